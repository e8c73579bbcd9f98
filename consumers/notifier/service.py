"""The notification consumer: events in batches -> one transaction -> confirmed publishes -> ack.

An event is acked only after its rows are committed and every message it yields (or its
parked copy) is confirmed by the broker, so a crash at any point means redelivery, and the
(event_id, template) key makes redelivery harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.orm import Session, sessionmaker

from consumers.notifier.planning import EventPlan, internal_error, plan_event
from consumers.notifier.store import BatchResult, load_catalog, write_batch
from shared.broker import SendQueuePublisher, confirmed_channel, connect
from shared.config import Settings
from shared.db.engine import transaction
from shared.db.retry import Stopped, is_outage, run_db
from shared.messages import DEAD_ID_HEADER, DETAIL_HEADER, REASON_HEADER
from shared.metrics import Metrics
from shared.topology import Topology

log = logging.getLogger(__name__)

Written = tuple[list[EventPlan], list[str], BatchResult]  # plans, their metric labels, what was written


class Notifier:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session], *,
                 batch_size: int = 200, batch_wait: float = 0.005) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.topology = Topology(settings.namespace)
        self.batch_size = batch_size
        self.batch_wait = batch_wait

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        connection = await connect(self.settings.amqp_url, "wanotify-notifier")
        try:
            channel = await confirmed_channel(connection, prefetch=self.batch_size * 3)
            publisher = SendQueuePublisher(channel, self.topology)
            await publisher.declare()
            queue = await channel.get_queue(self.topology.notifier_queue)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            tag = await queue.consume(inbox.put)
            log.info("notifier consuming %s", self.topology.notifier_queue)
            # Two batches in flight: while the broker confirms one batch's messages, the next is
            # planned and written in the worker thread. Acks stay in delivery order, because a
            # batch's publish-and-ack starts only after the previous one has finished.
            in_flight: asyncio.Task[None] | None = None
            while not stop.is_set():
                batch = await self._next_batch(inbox, stop)
                if not batch:
                    continue
                written = await self._write_or_requeue(batch, stop)
                if in_flight is not None:
                    await in_flight
                    in_flight = None
                if written is not None:
                    in_flight = asyncio.create_task(self._publish_and_ack(batch, written, publisher))
            if in_flight is not None:
                await in_flight
            await queue.cancel(tag)
            await _requeue(_drain(inbox))
        finally:
            await connection.close()

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
            await _requeue(batch)
            return None

    async def _publish_and_ack(self, batch: list[AbstractIncomingMessage], written: Written,
                               publisher: SendQueuePublisher) -> None:
        plans, labels, result = written
        try:
            await self._publish(plans, result, publisher)
        except Exception:
            log.exception("publishing a batch of %d failed; its events will be redelivered", len(batch))
            await _requeue(batch)
            return
        await _ack(batch)
        self._count(plans, labels, result)

    def _plan_and_write(self, bodies: list[bytes]) -> Written:
        """Plan and write a batch; if that fails for any reason but an outage, write its events
        one by one, and park the one that still fails, so a poison event cannot block the queue."""
        try:
            return self._write(bodies)
        except Exception as exc:
            if is_outage(exc):
                raise
            if len(bodies) == 1:
                log.exception("parking an event that cannot be written")
                return self._write(bodies, failure=exc)
            log.warning("a batch of %d failed (%s); writing its events one by one", len(bodies), exc)
            return _merge([self._plan_and_write([body]) for body in bodies])

    def _write(self, bodies: list[bytes], failure: Exception | None = None
               ) -> Written:
        with transaction(self.sessions) as session:
            catalog = load_catalog(session)
            if failure is None:
                plans = [plan_event(body, catalog, self.settings.default_region) for body in bodies]
            else:
                plans = [internal_error(body, failure) for body in bodies]
            labels = [catalog.metric_label(_event_type(p)) for p in plans]
            return plans, labels, write_batch(session, plans)

    async def _publish(self, plans: list[EventPlan], result: BatchResult, publisher: SendQueuePublisher) -> None:
        sends = [publisher.publish_send(command) for command in result.to_publish]
        parks = [self._park(plans[index], dead_id, publisher) for index, dead_id in result.dead_ids.items()]
        await asyncio.gather(*sends, *parks)

    async def _park(self, plan: EventPlan, dead_id: int, publisher: SendQueuePublisher) -> None:
        parked = plan.parked
        assert parked is not None
        log.warning("parked event %s (%s): %s", parked.event_id or "?", parked.reason, parked.detail,
                    extra={"event_id": parked.event_id, "reason": parked.reason, "dead_id": dead_id})
        headers = {REASON_HEADER: parked.reason, DETAIL_HEADER: parked.detail[:1000], DEAD_ID_HEADER: dead_id}
        await publisher.publish_dead(self.topology.events_dead_queue, plan.body, headers, parked.event_id)

    def _count(self, plans: list[EventPlan], labels: list[str], result: BatchResult) -> None:
        for plan, label in zip(plans, labels, strict=True):
            self.metrics.events_received.labels(label).inc()
            if plan.parked:
                self.metrics.events_parked.labels(label, plan.parked.reason).inc()
        for command in result.to_publish:
            self.metrics.messages_queued.labels(command.priority.value).inc()
        if result.duplicates:
            self.metrics.duplicate_events.inc(result.duplicates)


def _merge(parts: list[Written]) -> Written:
    plans: list[EventPlan] = []
    labels: list[str] = []
    merged = BatchResult()
    for part_plans, part_labels, result in parts:
        merged.to_publish += result.to_publish
        merged.dead_ids |= {len(plans) + index: dead_id for index, dead_id in result.dead_ids.items()}
        merged.duplicates += result.duplicates
        plans += part_plans
        labels += part_labels
    return plans, labels, merged


def _event_type(plan: EventPlan) -> str | None:
    if plan.messages:
        return plan.messages[0].event_type
    return plan.parked.event_type if plan.parked else None


def _drain(inbox: asyncio.Queue[AbstractIncomingMessage], limit: int | None = None) -> list[AbstractIncomingMessage]:
    items: list[AbstractIncomingMessage] = []
    while not inbox.empty() and (limit is None or len(items) < limit):
        items.append(inbox.get_nowait())
    return items


async def _ack(batch: Sequence[AbstractIncomingMessage]) -> None:
    try:
        # Batches are handled in delivery order, so one multiple-ack settles the whole batch.
        await batch[-1].ack(multiple=True)
    except Exception as exc:  # noqa: BLE001 - the channel died; the broker redelivers, rows dedupe
        log.warning("ack failed (%s); the batch will be redelivered and deduplicated", exc)


async def _requeue(batch: Sequence[AbstractIncomingMessage]) -> None:
    for message in batch:
        try:
            await message.nack(requeue=True)
        except Exception:  # noqa: BLE001 - channel gone: unacked deliveries return by themselves
            return
