"""Publishing an upstream app's outbox to wanotify: with confirms, in order, at least once.

The relay reads unsent rows in id order, publishes each to ``{ns}.events`` and waits for the
broker's confirm, then marks the batch sent. A crash or an outage between the publish and the
mark publishes those rows again (at most one batch per interruption): at least once, never
lost. wanotify makes one message per event_id, so a repeat changes nothing downstream.

Order per aggregate is the order of the rows' ids; it holds when the app's transactions for
one aggregate are serialized (they are when each updates the aggregate's row). On PostgreSQL
only one relay per outbox table publishes at a time (an advisory lock); others wait on standby
and take over within ``standby_seconds`` of the holder's end.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from pika.exceptions import AMQPError
from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError

from wanotify.producers.outbox.broker import RelayBroker, RelayBrokerError
from wanotify.producers.outbox.rows import OutboxRows
from wanotify.producers.outbox.table import outbox
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)

# How often a running relay says how far it got (INFO), when it published anything.
PROGRESS_EVERY_SECONDS = 10.0


class OutboxBusy(Exception):
    """Another relay holds this outbox's lock."""


class Stop(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    interruptions: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, float | int]:
        return {"published": self.published, "batches": self.batches, "interruptions": self.interruptions,
                "seconds": round(time.monotonic() - self.started, 3)}


class OutboxRelay:
    """``OutboxRelay(engine, amqp_url).run(stop)`` publishes until ``stop`` (a threading.Event) is set."""

    def __init__(self, engine: Engine, amqp_url: str, namespace: str = "wanotify", *, table: Table = outbox,
                 batch_size: int = 100, poll_seconds: float = 0.2, standby_seconds: float = 1.0,
                 max_backoff_seconds: float = 10.0, declare: bool = True) -> None:
        self._rows = OutboxRows(engine, table)
        self._broker = RelayBroker(amqp_url, Topology(namespace), declare)
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._standby = standby_seconds
        self._max_backoff = max_backoff_seconds
        self.stats = RelayStats()
        self._next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS

    def run(self, stop: Stop | None = None) -> RelayStats:
        """Relay until ``stop`` is set, waiting out outages of the database and of the broker."""
        stop = stop or threading.Event()
        delay = 0.2
        try:
            while not stop.is_set():
                try:
                    idle = self._step()
                    delay = 0.2
                except (DBAPIError, AMQPError, RelayBrokerError, OSError) as exc:
                    self._interrupted(exc, delay)
                    stop.wait(delay)
                    delay = min(delay * 2, self._max_backoff)
                    continue
                if idle is not None:
                    stop.wait(idle)
        finally:
            self.close()
        return self.stats

    def run_once(self) -> RelayStats:
        """Publish every row unsent now, then return (errors raise: for scripts and cron)."""
        try:
            if not self._rows.try_lock():
                raise OutboxBusy("another relay is publishing this outbox now (it holds the outbox's lock): "
                                 "let it do the work, or stop it first")
            while self._publish_batch():
                pass
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        self._rows.release()
        self._broker.close()

    def _step(self) -> float | None:
        """One round: the time to wait before the next, or None to go on at once."""
        if not self._rows.try_lock():
            return self._standby
        if self._publish_batch():
            return None
        self._broker.keep_alive()
        return self._poll

    def _publish_batch(self) -> int:
        rows = self._rows.unsent(self._batch_size)
        for row in rows:
            self._broker.publish(row.event_id, row.event_type, row.body)
        if rows:
            self._rows.mark_sent([row.id for row in rows])
            self.stats.published += len(rows)
            self.stats.batches += 1
            self._progress()
        return len(rows)

    def _progress(self) -> None:
        if time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS
            log.info("outbox relay: %d events published so far", self.stats.published)

    def _interrupted(self, exc: BaseException, delay: float) -> None:
        self.stats.interruptions += 1
        if isinstance(exc, DBAPIError):
            self._rows.drop()
            what = "the database"
        else:
            self._broker.close()
            what = "RabbitMQ"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log.warning("outbox relay: %s failed (%s: %s); unsent events stay in the outbox, retrying in %.1fs", what,
                    type(exc).__name__, first_line, delay)
