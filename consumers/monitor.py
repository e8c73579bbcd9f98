"""A background task in every long-running process: queue depths, consumers, backlog by
priority, the drain estimate and Meta's template and number state, refreshed into the
process's metrics."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.meta_state import refresh_metrics as refresh_meta_metrics
from wanotify.shared.metrics import Metrics
from wanotify.shared.monitoring import QueueProbe, drain_seconds, monitored_queues, waiting_by_priority
from wanotify.shared.runtime import load
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
    for stats in probe.stats(monitored_queues(topology)):
        if stats.ready is not None:
            metrics.queue_depth.labels(stats.name).set(stats.ready)
            metrics.queue_consumers.labels(stats.name).set(stats.consumers or 0)
    with transaction(sessions) as session:
        waiting = waiting_by_priority(session)
        gap = load(session, settings).gap_seconds
        refresh_meta_metrics(metrics.meta, session)  # templates' and numbers' state, as Meta reported it
    for priority, count in waiting.items():
        metrics.waiting_messages.labels(priority).set(count)
    metrics.gap_setting.set(gap)
    metrics.backlog_drain.set(drain_seconds(sum(waiting.values()), gap))
