"""A background task in every long-running process: queue depths, consumers, backlog by
priority, the drain estimate and Meta's template and number state, refreshed into the
process's metrics."""

from __future__ import annotations

import asyncio
import logging
import math

from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.meta_state import refresh_metrics as refresh_meta_metrics
from wanotify.shared.metrics import Metrics
from wanotify.shared.monitoring import QueueProbe, tally_waiting
from wanotify.shared.runtime import load
from wanotify.shared.sender_report import collect_senders, pool_drain, probe_names, queue_rows
from wanotify.shared.senders import load_senders
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)


async def monitor_forever(settings: Settings, metrics: Metrics, sessions: sessionmaker[Session],
                          interval: float = 5.0) -> None:
    probe = QueueProbe(settings.amqp_url)
    try:
        while True:
            try:
                await asyncio.to_thread(refresh, settings, metrics, sessions, probe)
            except Exception as exc:  # noqa: BLE001 - an outage; the consumers report it too
                log.debug("monitor refresh failed: %s", exc)
            await asyncio.sleep(interval)
    finally:
        probe.close()


def refresh(settings: Settings, metrics: Metrics, sessions: sessionmaker[Session], probe: QueueProbe) -> None:
    topology = Topology.of(settings)
    with transaction(sessions) as session:
        senders = load_senders(session, settings)
    stats = {q.name: q for q in probe.stats(probe_names(topology, senders))}
    # A sender's three priority queues as one series named like the contract's send queue.
    for row in queue_rows(topology, senders, stats):
        if row["ready"] is not None:
            metrics.queue_depth.labels(row["name"]).set(row["ready"])
            metrics.queue_consumers.labels(row["name"]).set(row["consumers"] or 0)
    with transaction(sessions) as session:
        waiting = tally_waiting(session)
        gap = load(session, settings).gap_seconds
        refresh_meta_metrics(metrics.meta, session)  # templates' and numbers' state, as Meta reported it
        reports = collect_senders(session, settings, gap, stats, waiting, senders)
    for priority, count in waiting.by_priority.items():
        metrics.waiting_messages.labels(priority).set(count)
    metrics.gap_setting.set(gap)
    metrics.senders.update(reports)
    drain = pool_drain(reports)
    # No sender may send: the backlog never drains; an hour's alert threshold sees it as "very long".
    metrics.backlog_drain.set(math.inf if drain is None else drain)
