"""The notification consumer: events in batches -> plan -> one transaction -> confirmed publishes -> ack.

An event is acked only after its rows are committed and every message it yields (or its
parked copy) is confirmed by the broker, so a crash at any point means redelivery, and the
(event_id, template) key makes redelivery harmless.

Memory is bounded in bytes, not only in events: the prefetch window follows the sizes of
recent events (``window.py``), and an event over ``MAX_EVENT_BYTES`` is parked as soon as it
arrives, whole on the dead queue and as a bounded head in the database, instead of waiting
in a batch. Templates render before the transaction opens, so a slow render holds no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.notifier.backoff import Backoff
from wanotify.consumers.notifier.planning import Catalog, EventPlan, internal_error, oversized, plan_event
from wanotify.consumers.notifier.routing import LoadCache
from wanotify.consumers.notifier.store import BatchResult, load_catalog, write_batch
from wanotify.consumers.notifier.window import PrefetchWindow
from wanotify.shared.broker import SendQueuePublisher, confirmed_channel, connect
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.retry import Stopped, is_outage, run_db
from wanotify.shared.events import MAX_EVENT_BYTES
from wanotify.shared.messages import DEAD_ID_HEADER, DETAIL_HEADER, REASON_HEADER
from wanotify.shared.metrics import Metrics
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)

Written = tuple[list[EventPlan], list[str], BatchResult]  # plans, their metric labels, what was written
MAX_HELD_BYTES = 32 * 1024 * 1024  # event bodies the broker may have sent and not had acked


class Notifier:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session], *,
                 batch_size: int = 200, batch_wait: float = 0.005, max_held_bytes: int = MAX_HELD_BYTES,
                 backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.topology = Topology.of(settings)
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.window = PrefetchWindow(max_held_bytes, max_count=batch_size * 3)
        self.backoff = backoff or Backoff()
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._catalog: Catalog | None = None  # the last one loaded: labels for events parked on arrival
        self._parking: set[asyncio.Task[None]] = set()  # events parked on arrival, not yet settled
        self._parking_tags: set[int] = set()
        self._window_set = self.window.count
        self._window_task: asyncio.Task[None] | None = None
        self._loads = LoadCache()  # the senders' load, for routing first contacts
        # Quorum queues have no channel-wide (global) prefetch: there the window is the consumer's.
        self._global_qos = self.topology.queue_type == "classic"

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        self._stop = stop
        connection = await connect(self.settings.amqp_url, "wanotify-notifier")
        try:
            # The window is the channel's limit (global): a consumer's own limit is fixed when it
            # starts consuming, the channel's can change at any time.
            self._channel: AbstractChannel = await confirmed_channel(connection, prefetch=0)
            await self._channel.set_qos(prefetch_count=self.window.count, global_=self._global_qos)
            self._publisher = SendQueuePublisher(self._channel, self.topology)
            await self._publisher.declare()
            self._queue = await self._channel.get_queue(self.topology.notifier_queue)
            self._consumer_tag = await self._queue.consume(self._arrived)
            log.info("notifier consuming %s", self.topology.notifier_queue)
            await self._consume(stop)
            await self._queue.cancel(self._consumer_tag)
            await self._requeue(_drain(self._inbox))
            await asyncio.gather(*self._parking)
        finally:
            await connection.close()

    async def _consume(self, stop: asyncio.Event) -> None:
        # Two batches in flight: while the broker confirms one batch's messages, the next is
        # planned and written in the worker thread. Acks stay in delivery order, because a
        # batch's publish-and-ack starts only after the previous one has finished.
        in_flight: asyncio.Task[None] | None = None
        while not stop.is_set():
            batch = await self._next_batch(self._inbox, stop)
            if not batch:
                continue
            written = await self._write_or_requeue(batch, stop)
            if in_flight is not None:
                await in_flight
                in_flight = None
            if written is not None:
                in_flight = asyncio.create_task(self._publish_and_ack(batch, written))
            del batch, written  # hold no bodies while waiting for the next batch
        if in_flight is not None:
            await in_flight

    async def _arrived(self, message: AbstractIncomingMessage) -> None:
        """The consumer callback: a too-large event is parked at once, the rest wait for a batch.
        Nothing here awaits before the event is queued, so the inbox keeps delivery order."""
        if len(message.body) > MAX_EVENT_BYTES:
            self._parking_tags.add(_tag(message))
            task = asyncio.create_task(self._park_on_arrival(message))
            self._parking.add(task)
            task.add_done_callback(self._parking.discard)
        else:
            self._inbox.put_nowait(message)
        self.window.observe(len(message.body))
        if self.window.count != self._window_set and (self._window_task is None or self._window_task.done()):
            self._window_task = asyncio.create_task(self._apply_window())

    async def _apply_window(self) -> None:
        while self._window_set != self.window.count:
            wanted = self.window.count
            try:
                await self._channel.set_qos(prefetch_count=wanted, global_=self._global_qos)
                if not self._global_qos:  # the consumer's own limit: it takes effect on a new consumer
                    await self._queue.cancel(self._consumer_tag)
                    self._consumer_tag = await self._queue.consume(self._arrived)
            except Exception as exc:  # noqa: BLE001 - the channel is being restored; the next event retries
                log.warning("could not change the prefetch window (%s)", exc)
                return
            log.log(logging.INFO if wanted < self._window_set else logging.DEBUG,
                    "prefetch window %d events (recent events up to %d bytes)", wanted, self.window.largest)
            self._window_set = wanted

    async def _park_on_arrival(self, message: AbstractIncomingMessage) -> None:
        plan = oversized(message.body, message.message_id, message.routing_key)
        label = self._catalog.metric_label(plan.parked.event_type) if self._catalog and plan.parked else "unknown"
        try:
            plans, result = await run_db(lambda: self._write_plans([plan]), self._stop)
        except Stopped:
            await self._requeue([message])
            return
        except Exception:  # not even its mirror row can be written: retry it later
            log.exception("parking a too-large event failed; it goes back to the queue")
            await _sleep_unless(self._stop, self.backoff.failed())
            await self._requeue([message])
            return
        await self._publish_and_ack([message], (plans, [label], result))

    async def _next_batch(self, inbox: asyncio.Queue[AbstractIncomingMessage],
                          stop: asyncio.Event) -> list[AbstractIncomingMessage]:
        stopping = asyncio.ensure_future(stop.wait())
        getting = asyncio.ensure_future(inbox.get())
        await asyncio.wait([stopping, getting], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not getting.done():
            getting.cancel()
            return []
        batch = [getting.result()]
        # A short wait lets a burst fill the batch; a lone event pays at most batch_wait.
        deadline = asyncio.get_running_loop().time() + self.batch_wait
        while len(batch) < self.batch_size:
            batch.extend(_drain(inbox, self.batch_size - len(batch)))
            remaining = deadline - asyncio.get_running_loop().time()
            if len(batch) >= self.batch_size or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(inbox.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _write_or_requeue(self, batch: list[AbstractIncomingMessage],
                                stop: asyncio.Event) -> Written | None:
        bodies = [m.body for m in batch]
        try:
            return await run_db(lambda: self._plan_and_write(bodies), stop)
        except Stopped:
            await self._requeue(batch)
            return None

    async def _publish_and_ack(self, batch: list[AbstractIncomingMessage], written: Written) -> None:
        plans, labels, result = written
        try:
            await self._publish(plans, result)
        except Exception as exc:  # any failure: the events go back, after a pause
            delay = self.backoff.failed()
            log.warning("publishing the messages of %d event(s) failed (%s: %s); they go back to the queue in %.1f s",
                        len(batch), type(exc).__name__, exc, delay, exc_info=delay == self.backoff.first)
            await _sleep_unless(self._stop, delay)
            await self._requeue(batch)
            return
        self.backoff.succeeded()
        await self._ack(batch)
        self._count(plans, labels, result)

    def _plan_and_write(self, bodies: list[bytes]) -> Written:
        """Plan a batch (rendering its templates outside any transaction), then write it."""
        with self.sessions() as session:
            self._catalog = catalog = load_catalog(session)
        plans = [self._plan(body, catalog) for body in bodies]
        labels = [catalog.metric_label(_event_type(p)) for p in plans]
        plans, result = self._write_plans(plans, catalog)
        return plans, labels, result

    def _plan(self, body: bytes, catalog: Catalog) -> EventPlan:
        try:
            return plan_event(body, catalog, self.settings.default_region)
        except Exception as exc:  # a bug in planning parks one event, not the batch
            log.exception("parking an event that cannot be planned")
            return internal_error(body, exc)

    def _write_plans(self, plans: list[EventPlan], catalog: Catalog | None = None) -> tuple[list[EventPlan], BatchResult]:
        """Write plans in one transaction; if that fails for any reason but an outage, write them
        one by one, and park the one that still fails, so a poison event cannot block the queue."""
        senders = catalog.senders if catalog else None
        try:
            with transaction(self.sessions) as session:
                return plans, write_batch(session, plans, self.settings.opt_out_scope, senders, self._loads)
        except Exception as exc:
            if is_outage(exc):
                raise
            if len(plans) == 1:
                log.exception("parking an event that cannot be written")
                parked = [internal_error(plans[0].body, exc)]
                with transaction(self.sessions) as session:
                    return parked, write_batch(session, parked)
            log.warning("a batch of %d failed (%s); writing its events one by one", len(plans), exc)
            return _merge([self._write_plans([plan], catalog) for plan in plans])

    async def _publish(self, plans: list[EventPlan], result: BatchResult) -> None:
        sends = [self._publisher.publish_send(command) for command in result.to_publish]
        # One copy per parked delivery: a body delivered twice (a redelivery, a duplicate
        # publish) may have two copies, both naming its one row.
        parks = [self._park(plans[index], dead_id) for index, dead_id in result.dead_ids.items()]
        await asyncio.gather(*sends, *parks)

    async def _park(self, plan: EventPlan, dead_id: int) -> None:
        parked = plan.parked
        assert parked is not None
        log.warning("parked event %s (%s): %s", parked.event_id or "?", parked.reason, parked.detail,
                    extra={"event_id": parked.event_id, "reason": parked.reason, "dead_id": dead_id})
        headers = {REASON_HEADER: parked.reason, DETAIL_HEADER: parked.detail[:1000], DEAD_ID_HEADER: dead_id}
        await self._publisher.publish_raw(self.topology.events_dead_queue, plan.body, headers, parked.event_id)

    async def _ack(self, batch: list[AbstractIncomingMessage]) -> None:
        # Batches are settled in delivery order, so one multiple-ack settles a whole batch,
        # unless it would also settle an event still being parked on arrival.
        tags = {_tag(m) for m in batch}
        parking_below = any(tag < _tag(batch[-1]) for tag in self._parking_tags - tags)
        await _ack(batch, multiple=len(batch) > 1 and not parking_below)
        self._parking_tags -= tags

    async def _requeue(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        self._parking_tags -= {_tag(m) for m in batch}
        for message in batch:
            try:
                await message.nack(requeue=True)
            except Exception:  # noqa: BLE001 - channel gone: unacked deliveries return by themselves
                return

    def _count(self, plans: list[EventPlan], labels: list[str], result: BatchResult) -> None:
        for plan, label in zip(plans, labels, strict=True):
            self.metrics.events_received.labels(label).inc()
            if plan.parked:
                self.metrics.events_parked.labels(label, plan.parked.reason).inc()
        for command in result.to_publish:
            self.metrics.messages_queued.labels(command.priority.value).inc()
        if result.duplicates:
            self.metrics.duplicate_events.inc(result.duplicates)


def _merge(parts: list[tuple[list[EventPlan], BatchResult]]) -> tuple[list[EventPlan], BatchResult]:
    plans: list[EventPlan] = []
    merged = BatchResult()
    for part_plans, result in parts:
        merged.to_publish += result.to_publish
        merged.dead_ids |= {len(plans) + index: dead_id for index, dead_id in result.dead_ids.items()}
        merged.duplicates += result.duplicates
        plans += part_plans
    return plans, merged


def _event_type(plan: EventPlan) -> str | None:
    if plan.messages:
        return plan.messages[0].event_type
    return plan.parked.event_type if plan.parked else None


def _tag(message: AbstractIncomingMessage) -> int:
    return message.delivery_tag or 0


def _drain(inbox: asyncio.Queue[AbstractIncomingMessage], limit: int | None = None) -> list[AbstractIncomingMessage]:
    items: list[AbstractIncomingMessage] = []
    while not inbox.empty() and (limit is None or len(items) < limit):
        items.append(inbox.get_nowait())
    return items


async def _ack(batch: Sequence[AbstractIncomingMessage], multiple: bool) -> None:
    try:
        if multiple:
            await batch[-1].ack(multiple=True)
        else:
            for message in batch:
                await message.ack()
    except Exception as exc:  # noqa: BLE001 - the channel died; the broker redelivers, rows dedupe
        log.warning("ack failed (%s); the events will be redelivered and deduplicated", exc)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
