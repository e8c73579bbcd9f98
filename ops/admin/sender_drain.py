"""``wanotify senders drain NAME --to OTHER``: move what waits in one sender's queues to another's.

Each copy is taken from NAME's queue (unacknowledged), published to OTHER's queue of the same
priority and confirmed by the broker; then the log rows (and their recipients) are moved to
OTHER in one transaction; only then are the taken copies acknowledged. A crash at any point
leaves the copies in NAME's queue (they return when the connection drops) and perhaps a copy
in OTHER's too: running the drain again moves them, and the sender drops the second copy of an
attempt as stale. So the drain is safe to repeat and to interrupt.

Copies waiting in a retry or deferral queue return to NAME's queues when their time comes:
run the drain again after them (``RETRY_DELAY_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from wanotify.ops.admin.audit import record
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.broker import SendQueuePublisher, confirmed_channel, connect
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory, transaction
from wanotify.shared.db.models import MessageLog, Recipient, SenderRow
from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import SendCommand
from wanotify.shared.topology import DEFAULT_SENDER, PRIORITY_ORDER, Topology

BATCH = 100  # copies held unacknowledged at once; their rows move in one transaction
Progress = Callable[[int, int], None]  # (moved so far, total seen at the start)


@dataclass
class Drained:
    moved: int = 0
    by_queue: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"moved": self.moved, "by_queue": self.by_queue}


def check_drain(session: Session, source: str, target: str) -> None:
    """``ActionRefused`` unless ``target`` is another active sender and ``source`` a sender
    (``default`` always is one: its queues may hold what waited before senders were rows)."""
    if source == target:
        raise ActionRefused("--to must name another sender than the one drained")
    rows = {name: disabled for name, disabled in session.execute(select(SenderRow.name, SenderRow.disabled_at)).all()}
    if source not in rows and source != DEFAULT_SENDER:
        raise ActionRefused(f"there is no sender {source!r} — `wanotify senders list` shows them")
    if target not in rows and not (target == DEFAULT_SENDER and not rows):
        raise ActionRefused(f"there is no sender {target!r} to move to — `wanotify senders list` shows them")
    if rows.get(target) is not None:
        raise ActionRefused(f"sender {target!r} is disabled: move to an active sender (or enable it first)")


class SenderDrain:
    """One drain: a broker connection and a database engine for its length."""

    def __init__(self, settings: Settings, actor: str) -> None:
        self.settings, self.actor = settings, actor
        self.topology = Topology.of(settings)

    async def run(self, source: str, target: str, progress: Progress | None = None) -> Drained:
        engine = make_engine(self.settings.database_url, pool_size=1)
        sessions = session_factory(engine)
        try:
            with transaction(sessions) as session:
                check_drain(session, source, target)
            connection = await connect(self.settings.amqp_url, "wanotify-drain")
            try:
                channel = await confirmed_channel(connection, prefetch=0)
                queues = [await _existing(connection, channel, self.topology.send_queue_for(source, p))
                          for p in PRIORITY_ORDER]
                drained = await self._move_all(channel, queues, sessions, source, target, progress or _quiet)
            finally:
                await connection.close()
            with transaction(sessions) as session:
                record(session, self.actor, "sender.drain", target={"sender": source, "to": target}, count=drained.moved)
            return drained
        finally:
            engine.dispose()

    async def _move_all(self, channel: AbstractChannel, queues: list[AbstractQueue | None], sessions: sessionmaker[Session],
                        source: str, target: str, progress: Progress) -> Drained:
        publisher = SendQueuePublisher(channel, self.topology)
        await publisher.declare_sender(target)
        total = sum(q.declaration_result.message_count or 0 for q in queues if q is not None)
        drained = Drained()
        progress(0, total)
        for priority, queue in zip(PRIORITY_ORDER, queues, strict=True):
            if queue is None:
                continue
            mover = _Mover(publisher, channel, sessions, source, target, self.topology.send_queue_for(target, priority))
            while (moved := await mover.batch(queue)) > 0:
                drained.moved += moved
                drained.by_queue[queue.name] = drained.by_queue.get(queue.name, 0) + moved
                progress(drained.moved, total)
        return drained


@dataclass
class _Mover:
    publisher: SendQueuePublisher
    channel: AbstractChannel
    sessions: sessionmaker[Session]
    source: str
    target: str
    target_queue: str

    async def batch(self, queue: AbstractQueue) -> int:
        """Take up to BATCH copies, publish them to the target, move their rows, then ack them."""
        taken: list[AbstractIncomingMessage] = []
        log_ids: list[int] = []
        while len(taken) < BATCH:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
            log_id = await self._publish(message)
            if log_id is not None:
                log_ids.append(log_id)
        if not taken:
            return 0
        with transaction(self.sessions) as session:
            move_rows(session, log_ids, self.source, self.target)
        await taken[-1].ack(multiple=True)
        return len(taken)

    async def _publish(self, message: AbstractIncomingMessage) -> int | None:
        try:
            command = SendCommand.decode(message.body)
        except PermanentError:  # not a send command: it moves as it is, and is parked where it lands
            await self.channel.default_exchange.publish(
                aio_pika.Message(message.body, headers=dict(message.headers or {}), message_id=message.message_id,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=self.target_queue, mandatory=True)
            return None
        await self.publisher.publish_send(command.on(self.target))
        return command.log_id


def move_rows(session: Session, log_ids: list[int], source: str, target: str) -> int:
    """Log rows of moved copies say ``target``, and so do their recipients that stuck to ``source``."""
    if not log_ids:
        return 0
    moved = session.execute(update(MessageLog).where(MessageLog.id.in_(log_ids)).values(sender=target)
                            .returning(MessageLog.recipient)).scalars().all()
    session.execute(update(Recipient).where(Recipient.phone.in_(set(moved)), Recipient.sender == source)
                    .values(sender=target))
    return len(moved)


async def _existing(connection: AbstractRobustConnection, channel: AbstractChannel, name: str) -> AbstractQueue | None:
    """The queue, or None if it was never declared (nothing waits in it). A passive declare of a
    missing queue closes its channel, so it is tried on a channel of its own first."""
    probe = await connection.channel()
    try:
        await probe.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelClosed:
        return None
    await probe.close()
    return await channel.declare_queue(name, passive=True)


def _quiet(_moved: int, _total: int) -> None:
    return None
