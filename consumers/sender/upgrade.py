"""Copies left by the release before the sender pool, brought into this release's queues.

That release had one send queue per namespace, ``{ns}.send`` (priority by ``x-max-priority``),
and retry queues ``{ns}.send.retry.<ms>ms`` that dead-lettered back to it by name. After an
upgrade, with nothing for an operator to run:

- **Copies in ``{ns}.send``** (the backlog, and the retries that its old retry queues return
  there later) are moved by the sender, at start and at every recovery sweep, to the queue of
  their sender and priority. Each is confirmed there by the broker before it is acked, so a
  crash moves a copy twice at worst (the second is dropped as stale) and never loses one. The
  queue itself stays: deleting it would make the broker drop what old retry queues still
  return to it.
- **A retry queue of the same name** keeps the old arguments, which RabbitMQ cannot change (a
  declare with the new ones is refused, 406). The first time this release needs such a queue,
  it converts it: its copies wait in ``<name>.upgrading`` while the queue is deleted and
  declared anew, then go back into it with the header that returns each to its own send queue
  (they wait their delay once more: later, never lost). A conversion cut short leaves copies in
  ``<name>.upgrading``; the next one takes them back.

The same conversion serves a delay queue left with another ``QUEUE_TYPE``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from wanotify.shared.broker import SendQueuePublisher
from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import DETAIL_HEADER, REASON_HEADER, SendCommand
from wanotify.shared.topology import QueueSpec, Topology

log = logging.getLogger(__name__)

HOLD_SUFFIX = ".upgrading"
UNDECODABLE = "undecodable"  # the dead-letter reason of a copy that is not a send command
Move = Callable[[AbstractIncomingMessage], Awaitable[None]]
PROGRESS_EVERY = 10_000  # a big old backlog says how far it has got


class LegacyQueues:
    def __init__(self, connection: AbstractRobustConnection, publisher: SendQueuePublisher, topology: Topology) -> None:
        self.connection = connection
        self.publisher = publisher
        self.topology = topology

    async def move_waiting(self) -> int:
        """Move every copy waiting in the old send queue to its sender's queue for its priority."""
        name = self.topology.legacy_send_queue
        moved = await self._drain(name, self._forward)
        if moved:
            log.warning("moved %d message(s) from %s, the send queue of the release before the sender pool, "
                        "to the queues of their priority", moved, name)
        return moved

    async def prepare(self, spec: QueueSpec) -> None:
        """Before this process first declares the delay queue ``spec``: convert a queue of that
        name declared with other arguments, and take back copies a cut-short conversion left."""
        if not await self._declares(spec):
            await self._convert(spec)
        await self._drain(spec.name + HOLD_SUFFIX, lambda message: self._into_delay_queue(message, spec.name),
                          delete_after=True)

    async def _declares(self, spec: QueueSpec) -> bool:
        """Whether ``spec`` declares as it is (False: a queue of that name has other arguments)."""
        channel = await self.connection.channel()
        try:
            await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        except ChannelPreconditionFailed:
            return False  # the refusal closed the channel
        await channel.close()
        return True

    async def _convert(self, spec: QueueSpec) -> None:
        hold = spec.name + HOLD_SUFFIX
        channel = await self.connection.channel()
        try:
            await channel.declare_queue(hold, durable=True, arguments={"x-queue-type": "classic"})
        finally:
            await _close(channel)
        kept = await self._drain(spec.name, lambda message: self._raw(message, hold))
        channel = await self.connection.channel()
        try:
            old = await channel.get_queue(spec.name, ensure=False)
            # A copy that came in meanwhile (an old sender still running) makes the broker refuse:
            # the retry that needed the queue fails, and its message is tried again later.
            await old.delete(if_unused=False, if_empty=True)
            await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        finally:
            await _close(channel)
        log.warning("converted %s to this release's arguments (%d waiting copies kept)", spec.name, kept)

    async def _drain(self, name: str, move: Move, delete_after: bool = False) -> int:
        """Apply ``move`` to every copy in the queue ``name`` (none if it does not exist), acking
        each after it; returns how many."""
        channel = await self.connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            return 0
        moved = 0
        try:
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                await move(message)
                await message.ack()
                moved += 1
                if moved % PROGRESS_EVERY == 0:
                    log.info("%s: %d moved so far", name, moved)
            if delete_after:
                await queue.delete(if_unused=False, if_empty=True)
        finally:
            await _close(channel)
        return moved

    async def _forward(self, message: AbstractIncomingMessage) -> None:
        command = await self._command_or_park(message)
        if command is not None:
            await self.publisher.publish_send(command)

    async def _into_delay_queue(self, message: AbstractIncomingMessage, queue: str) -> None:
        command = await self._command_or_park(message)
        if command is not None:
            await self.publisher.publish_to_delay_queue(command, queue)

    async def _raw(self, message: AbstractIncomingMessage, queue: str) -> None:
        await self.publisher.publish_raw(queue, message.body, dict(message.headers or {}), message.message_id)

    async def _command_or_park(self, message: AbstractIncomingMessage) -> SendCommand | None:
        """The copy's send command; one that is not a send command is parked in the dead queue."""
        try:
            return SendCommand.decode(message.body)
        except PermanentError as exc:
            headers = dict(message.headers or {}) | {REASON_HEADER: UNDECODABLE, DETAIL_HEADER: str(exc)[:1000]}
            await self.publisher.publish_raw(self.topology.send_dead_queue, message.body, headers, message.message_id)
            return None


async def _close(channel: AbstractChannel) -> None:
    try:
        await channel.close()
    except aio_pika.exceptions.ChannelInvalidStateError:
        pass  # closed by the broker already
