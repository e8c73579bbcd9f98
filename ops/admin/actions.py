"""Admin actions that touch both the database and the broker.

Ordering keeps every step safe to repeat: rows are selected and locked, copies are published
(with confirms) while the lock is held, then the transaction commits. If publishing fails the
rows stay as they were; if the commit fails the published copies are stale (their attempt does
not match the row) and the sender drops them. Replayed events are the exception: they are
published after the commit (see ``_republish_events``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wanotify.consumers.notifier.routing import reroute_copies
from wanotify.ops.admin.audit import record
from wanotify.ops.admin.dead_letters import (
    DeadFilter,
    ReplayPlan,
    refuse_unknown,
    restore_parked,
    take_for_purge,
    take_for_replay,
)
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.broker import SendQueuePublisher, confirmed_channel, connect
from wanotify.shared.config import Settings
from wanotify.shared.db.copies import failed_copies, forget_schedule
from wanotify.shared.db.engine import make_engine, session_factory, transaction
from wanotify.shared.db.models import WAITING_STATUSES, MessageLog, Status
from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import DEAD_ID_HEADER, SendCommand
from wanotify.shared.runtime import load
from wanotify.shared.senders import load_senders
from wanotify.shared.topology import DEFAULT_SENDER, Topology


@dataclass
class Outcome:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def count_waiting(session: Session) -> int:
    """How many messages ``clear_queue`` would cancel now, every one still to be sent (waiting, or
    failed and waiting for its retry): its dry run, and what confirms it."""
    return session.scalar(select(func.count()).where(MessageLog.status.in_(WAITING_STATUSES))) or 0


def count_failed(session: Session, limit: int) -> int:
    """How many messages ``retry_failed`` would send again now (its dry run)."""
    rows = select(MessageLog.id).where(MessageLog.status == Status.FAILED).limit(limit)
    return session.scalar(select(func.count()).select_from(rows.subquery())) or 0


class Admin:
    """One connection to the broker and one to the database, for one admin action by ``actor``
    (a console user, or ``cli:<os user>``); every action is written to the audit log in the
    transaction that does it."""

    def __init__(self, settings: Settings, actor: str) -> None:
        self.settings = settings
        self.actor = actor
        self.topology = Topology.of(settings)

    async def __aenter__(self) -> Admin:
        self._engine = make_engine(self.settings.database_url, pool_size=1)
        self.sessions = session_factory(self._engine)
        self._connection = await connect(self.settings.amqp_url, "wanotify-admin")
        self.channel: AbstractChannel = await confirmed_channel(self._connection, prefetch=100)
        self.publisher = SendQueuePublisher(self.channel, self.topology)
        await self.publisher.declare()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._connection.close()
        self._engine.dispose()

    async def replay(self, f: DeadFilter, limit: int) -> Outcome:
        outcome = Outcome()
        with transaction(self.sessions) as session:
            refuse_unknown(session, f, "replayed")
            plan = take_for_replay(session, f, limit)
            for command in plan.messages:
                await self.publisher.publish_send(command)
            record(session, self.actor, "dead.replay", target=f.target(), count=len(plan.messages) + len(plan.events))
        await self._republish_events(plan)
        outcome.add("messages_replayed", len(plan.messages))
        outcome.add("events_replayed", len(plan.events))
        await self._remove_from_dead_queues({c.log_id for c in plan.messages}, {e[0] for e in plan.events}, outcome)
        return outcome

    async def purge(self, f: DeadFilter, limit: int) -> Outcome:
        outcome = Outcome()
        with transaction(self.sessions) as session:
            refuse_unknown(session, f, "purged")
            messages, events = take_for_purge(session, f, limit)
            record(session, self.actor, "dead.purge", target=f.target(), count=len(messages) + len(events))
        outcome.add("messages_purged", len(messages))
        outcome.add("events_purged", len(events))
        await self._remove_from_dead_queues(messages, events, outcome)
        return outcome

    async def retry_failed(self, limit: int) -> Outcome:
        """Send every ``failed`` message again now (the original's scheduler pass, on demand)."""
        outcome = Outcome()
        with transaction(self.sessions) as session:
            copies = failed_copies(session, overdue_seconds=None, limit=limit, lock=True)
            # A failed message of a disabled sender is sent again from its recipient's new one.
            for command in reroute_copies(session, [copy.command for copy in copies]):
                await self.publisher.publish_send(command)
            forget_schedule(session, copies)
            record(session, self.actor, "retry_failed", target={"limit": limit}, count=len(copies))
        outcome.add("messages_requeued", len(copies))
        return outcome

    async def clear_queue(self, expected: int | None = None) -> Outcome:
        """Emergency stop: drop everything waiting to be sent; each dropped message's row says cancelled.

        ``expected`` is the number of waiting messages the operator confirmed: when more or
        fewer are waiting now, nothing is dropped (they confirmed a different situation).
        """
        outcome = Outcome()
        with transaction(self.sessions) as session:
            runtime = load(session, self.settings)
            senders = [s.name for s in load_senders(session, self.settings)]
            # Cancel the rows first: any copy still on a queue afterwards is stale and dropped.
            result = session.execute(
                update(MessageLog).where(MessageLog.status.in_(WAITING_STATUSES)).values(
                    status=Status.CANCELLED, updated_at=func.now(), last_error=f"cancelled by {self.actor} (queue clear)"))
            cancelled: int = result.rowcount  # type: ignore[attr-defined]
            _check_expected(cancelled, expected)  # if it refuses, the transaction rolls back
            outcome.add("messages_cancelled", cancelled)
            record(session, self.actor, "queue.clear", count=cancelled)
        delays = {runtime.retry_delay_seconds(n, self.settings.retry_backoff) for n in range(1, 11)}
        send_queues = [q for sender in dict.fromkeys([DEFAULT_SENDER, *senders]) for q in self.topology.send_queues(sender)]
        for name in [*send_queues, *(self.topology.retry_queue(d) for d in delays)]:
            outcome.add("copies_dropped", await self._purge_queue(name))
        return outcome

    async def _purge_queue(self, name: str) -> int:
        try:
            channel = await self._connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            dropped = await queue.purge()
            await channel.close()
            return int(dropped.message_count or 0)
        except aio_pika.exceptions.ChannelClosed:  # no such queue: nothing was waiting in it
            return 0

    async def _republish_events(self, plan: ReplayPlan) -> None:
        """Events go out after their rows say ``replayed`` (committed): one the notifier parks again
        then gets its row back. If publishing fails, the rows not sent say ``parked`` again."""
        sent = 0
        try:
            for _dead_id, routing_key, body, event_id in plan.events:
                await self._republish_event(routing_key, body, event_id)
                sent += 1
        except BaseException:
            with transaction(self.sessions) as session:
                restore_parked(session, [dead_id for dead_id, *_ in plan.events[sent:]])
            raise

    async def _republish_event(self, routing_key: str, body: bytes, event_id: str | None) -> None:
        exchange = await self.channel.get_exchange(self.topology.events_exchange)
        message = aio_pika.Message(body, content_type="application/json", message_id=event_id,
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key=routing_key, mandatory=True)

    async def _remove_from_dead_queues(self, log_ids: set[int], dead_ids: set[int], outcome: Outcome) -> None:
        if log_ids:
            outcome.add("queue_copies_removed", await self._walk(self.topology.send_dead_queue, _log_id_in(log_ids)))
        if dead_ids:
            outcome.add("queue_copies_removed", await self._walk(self.topology.events_dead_queue, _dead_id_in(dead_ids)))

    async def _walk(self, queue_name: str, take: Callable[[AbstractIncomingMessage], bool]) -> int:
        """Go through the queue once: ack what ``take`` selects, move the rest to the tail."""
        queue = await self.channel.declare_queue(queue_name, passive=True)
        waiting = queue.declaration_result.message_count or 0
        taken = 0
        for _ in range(waiting):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            if not take(message):
                await self.publisher.publish_raw(queue_name, message.body, dict(message.headers or {}),
                                                  message.message_id)
            else:
                taken += 1
            await message.ack()
        return taken


def _check_expected(waiting: int, expected: int | None) -> None:
    if expected is not None and waiting != expected:
        raise ActionRefused(f"{waiting} messages are waiting now, not {expected}: nothing was cleared — "
                            "confirm with the current number")


def _log_id_in(ids: set[int]) -> Callable[[AbstractIncomingMessage], bool]:
    def take(message: AbstractIncomingMessage) -> bool:
        try:
            return SendCommand.decode(message.body).log_id in ids
        except PermanentError:
            return False
    return take


def _dead_id_in(ids: set[int]) -> Callable[[AbstractIncomingMessage], bool]:
    def take(message: AbstractIncomingMessage) -> bool:
        value: Any = (message.headers or {}).get(DEAD_ID_HEADER)
        return isinstance(value, int) and value in ids
    return take
