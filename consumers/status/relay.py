"""Publishing committed status changes to ``{ns}.status``, in order per message, at least once.

One relay runs inside every long-running wanotify process; the advisory lock of
``StatusOutboxStore`` lets exactly one of them publish per database, the others wait on
standby. The holder reads unpublished rows in id order, publishes them with publisher
confirms, and marks them published only after every confirm of the batch: a crash in between
publishes them again (never loses one). The trigger on ``whatsapp_logs`` writes a row only
inside the committing transaction, so nothing uncommitted is ever published.

Once it has caught up (a read returned less than a full batch), the relay looks again after
``idle_poll_seconds`` (100 ms), so an event leaves within about that of its commit. Reading
again at once instead would cost a busy system a read and a mark for every few changes: at
80 calls a second the sender's relay read every 12 ms, a quarter of a round trip per call. A
full batch means a backlog, read on without a pause. Published rows are deleted after
``retention_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from wanotify.consumers.status.payload import amqp_message_id, encode, routing_key
from wanotify.consumers.status.store import OutboxRow, StatusOutboxStore
from wanotify.shared.broker import connect
from wanotify.shared.config import Settings
from wanotify.shared.metrics import Metrics
from wanotify.shared.startup import cause, is_unreachable
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)

CONNECTION_NAME = "wanotify-status-relay"


@dataclass(frozen=True)
class RelayOptions:
    batch_size: int = 500
    idle_poll_seconds: float = 0.1
    # How often a standby tries the lock: the longest a takeover waits after the holder died.
    standby_poll_seconds: float = 1.0
    retention_seconds: float = 7 * 86_400.0
    prune_every_seconds: float = 60.0
    gauges_every_seconds: float = 1.0
    publish_timeout_seconds: float = 30.0
    max_backoff_seconds: float = 5.0


class StatusRelay:
    def __init__(self, amqp_url: str, namespace: str, engine: Engine, metrics: Metrics,
                 options: RelayOptions | None = None) -> None:
        self._amqp_url = amqp_url
        self._exchange_name = Topology(namespace).status_exchange
        self._store = StatusOutboxStore(engine)
        self._metrics = metrics
        self._options = options or RelayOptions()
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._next_prune = self._next_gauges = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; outages of either service are waited out, never fatal."""
        delay = 0.2
        try:
            while not stop.is_set():
                try:
                    await self._step(stop)
                    delay = 0.2
                except Exception as exc:  # noqa: BLE001 - the relay must outlive any outage
                    await self._recover(exc, delay)
                    await _sleep(delay, stop)
                    delay = min(delay * 2, self._options.max_backoff_seconds)
        finally:
            await self._shut_down()

    async def run_until_empty(self) -> int:
        """Publish every pending row once (tests and tools); returns how many were published."""
        published = 0
        if not await asyncio.to_thread(self._store.try_acquire):
            return 0
        try:
            while rows := await asyncio.to_thread(self._store.pending, self._options.batch_size):
                published += await self._relay(rows)
        finally:
            await self._shut_down()
        return published

    async def _step(self, stop: asyncio.Event) -> None:
        if not await self._hold_lock():
            await _sleep(self._options.standby_poll_seconds, stop)
            return
        await self._housekeeping()
        rows = await asyncio.to_thread(self._store.pending, self._options.batch_size)
        if rows:
            await self._relay(rows)
        if len(rows) < self._options.batch_size:  # caught up: let the next changes gather first
            await _sleep(self._options.idle_poll_seconds, stop)

    async def _hold_lock(self) -> bool:
        was_holding = self._store.holding
        holding = await asyncio.to_thread(self._store.try_acquire)
        if holding and not was_holding:
            log.info("status relay: active, publishing status events to %s", self._exchange_name)
            self._metrics.status_relay_active.set(1)
        return holding

    async def _relay(self, rows: list[OutboxRow]) -> int:
        exchange = await self._ensure_exchange()
        for wave in waves(rows):
            await asyncio.gather(*(self._publish(exchange, row) for row in wave))
        await asyncio.to_thread(self._store.mark_published, [row.id for row in rows])
        for row in rows:
            self._metrics.status_events_published.labels(row.status).inc()
        return len(rows)

    async def _publish(self, exchange: AbstractExchange, row: OutboxRow) -> None:
        message = aio_pika.Message(
            encode(row), content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=amqp_message_id(row), type=routing_key(row), timestamp=row.at,
        )
        # Not mandatory (aio-pika's default is): an exchange nobody has bound a queue to yet is
        # not an error, and the broker would send each event back in full.
        await exchange.publish(message, routing_key=routing_key(row), mandatory=False,
                               timeout=self._options.publish_timeout_seconds)

    async def _ensure_exchange(self) -> AbstractExchange:
        if self._exchange is None:
            self._connection = await connect(self._amqp_url, CONNECTION_NAME)
            channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC,
                                                            durable=True)
        return self._exchange

    async def _housekeeping(self) -> None:
        """Backlog and lag gauges about once a second, pruning about once a minute."""
        now = time.monotonic()
        if now >= self._next_gauges:
            self._next_gauges = now + self._options.gauges_every_seconds
            backlog = await asyncio.to_thread(self._store.backlog)
            self._metrics.status_outbox_backlog.set(backlog.rows)
            self._metrics.status_relay_lag.set(backlog.oldest_age_seconds)
        if now >= self._next_prune:
            self._next_prune = now + self._options.prune_every_seconds
            pruned = await asyncio.to_thread(self._store.prune, self._options.retention_seconds)
            if pruned:
                log.info("status relay: pruned %d published status events older than %.0fs", pruned,
                         self._options.retention_seconds)

    async def _recover(self, exc: Exception, delay: float) -> None:
        """Start over from the oldest unpublished row, on a new connection to whichever failed."""
        if isinstance(exc, DBAPIError):
            if self._store.holding:
                self._metrics.status_relay_active.set(0)
            await asyncio.to_thread(self._store.drop)  # a new connection must take the lock again
        else:
            await self._close_broker()
        what = "PostgreSQL" if isinstance(exc, DBAPIError) else "RabbitMQ" if is_unreachable(exc) else None
        if what is None:  # not an outage: a bug to report, still retried so no status event is lost
            log.error("status relay: unexpected error; retrying in %.1fs", delay, exc_info=exc)
        else:
            log.warning("status relay: %s failed (%s); the batch in hand is published again in %.1fs", what,
                        cause(exc), delay)

    async def _shut_down(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._store.release)
        self._metrics.status_relay_active.set(0)
        await self._close_broker()

    async def _close_broker(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def waves(rows: list[OutboxRow]) -> Iterator[list[OutboxRow]]:
    """Consecutive runs of rows with at most one row per message: a wave is published at once
    and confirmed before the next, so one message's changes leave strictly in order."""
    wave: list[OutboxRow] = []
    seen: set[int] = set()
    for row in rows:
        if row.log_id in seen:
            yield wave
            wave, seen = [], set()
        wave.append(row)
        seen.add(row.log_id)
    if wave:
        yield wave


async def relay_status_forever(settings: Settings, metrics: Metrics, engine: Engine, stop: asyncio.Event) -> None:
    """The status relay of a long-running process (on standby while another process holds it)."""
    options = RelayOptions(retention_seconds=settings.status_retention_days * 86_400)
    await StatusRelay(settings.amqp_url, settings.namespace, engine, metrics, options).run(stop)


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
