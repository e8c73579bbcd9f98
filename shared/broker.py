"""aio-pika plumbing both consumers use: a robust connection and confirmed publishing."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.robust_connection import RobustConnection
from yarl import URL

from wanotify.shared.messages import ATTEMPT_HEADER, SendCommand
from wanotify.shared.topology import (
    DEFAULT_SENDER,
    RETURN_HEADER,
    QueueSpec,
    Topology,
    declare_sender_queues_async,
    declare_topology_async,
    defer_step,
)
from wanotify.shared.urls import amqp_hosts, amqp_urls

log = logging.getLogger(__name__)


# After a broker restart the connection is back within this long of the broker (aio-pika's
# default, 5 s, would stall sending for that long after every restart).
RECONNECT_INTERVAL_SECONDS = 1.0


class FailoverConnection(RobustConnection):
    """A robust connection to any node of a cluster: every (re)connection attempt goes to the
    next URL in turn, so a process whose node went down reconnects to another one and gets its
    queues, consumers and QoS restored there."""

    def __init__(self, url: URL, *, urls: list[str], first: int = 0, **kwargs: Any) -> None:
        self._urls = [URL(u) for u in urls]
        self._turn = first
        super().__init__(url, **kwargs)

    async def _RobustConnection__connect_transport(self) -> None:  # aio-pika's one connection attempt
        self.url = self._urls[self._turn % len(self._urls)]
        self._turn += 1
        log.debug("connecting to RabbitMQ at %s:%s", self.url.host, self.url.port)
        await super()._RobustConnection__connect_transport()  # type: ignore[misc]


async def connect(amqp_url: str, name: str) -> AbstractRobustConnection:
    """A connection that reconnects by itself and restores queues, consumers and QoS.

    ``amqp_url`` may list several nodes, comma-separated: the first attempt starts at a random
    one (spreading processes over the cluster) and tries each in turn; a lost connection moves
    on to the next. The first connection raises if no node is reachable; the consumers' runner
    waits and tries again (``wanotify.shared.startup``)."""
    urls = amqp_urls(amqp_url)
    start = random.randrange(len(urls))
    failure: BaseException | None = None
    for offset in range(len(urls)):
        try:
            # The node list goes to the class, not through connect_robust's keywords (which it
            # would also append to the URL's query string, passwords and all).
            failover = functools.partial(FailoverConnection, urls=urls, first=start + offset)
            return await aio_pika.connect_robust(
                urls[(start + offset) % len(urls)], client_properties={"connection_name": name},
                reconnect_interval=RECONNECT_INTERVAL_SECONDS, connection_class=failover)
        except Exception as exc:  # noqa: BLE001 - the next node may answer; the last failure is raised
            if offset < len(urls) - 1:  # the last one's failure is the error itself: said once, not twice
                log.warning("RabbitMQ at %s: %s; trying the next node", amqp_hosts(urls[(start + offset) % len(urls)]), exc)
            failure = exc
    assert failure is not None
    raise failure


async def confirmed_channel(connection: AbstractRobustConnection, prefetch: int) -> AbstractChannel:
    """A channel with publisher confirms; an unroutable publish raises instead of vanishing."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=prefetch)
    return channel


class SendQueuePublisher:
    """Publishes send commands, delayed copies (retries, deferrals) and dead letters, each
    confirmed by the broker. A command goes to its sender's queue for its priority."""

    def __init__(self, channel: AbstractChannel, topology: Topology) -> None:
        self._channel = channel
        self._topology = topology
        self._declared: set[str] = set()
        # Run once before a delay queue's first declare: the sender converts a queue of that
        # name left with other arguments by an earlier release (``consumers/sender/upgrade.py``).
        self.prepare_delay_queue: Callable[[QueueSpec], Awaitable[None]] | None = None

    async def declare(self, senders: tuple[str, ...] = ()) -> None:
        await declare_topology_async(self._channel, self._topology, senders)
        self._declared.update(senders)

    async def declare_sender(self, sender: str) -> None:
        """Declare ``sender``'s queues once per channel (a sender added while we run)."""
        if sender not in self._declared and sender != DEFAULT_SENDER:
            await declare_sender_queues_async(self._channel, self._topology, sender)
        self._declared.add(sender)

    async def publish_send(self, command: SendCommand) -> None:
        await self.declare_sender(command.sender)
        await self._publish(command.encode(), self._topology.send_queue_for(command.sender, command.priority), command)

    async def publish_retry(self, command: SendCommand, delay_seconds: float) -> str:
        """Park ``command`` in the retry queue for this delay; it comes back when its TTL ends."""
        return await self._publish_delayed(command, self._topology.retry_queue_spec(delay_seconds))

    async def publish_defer(self, command: SendCommand, wait_seconds: float) -> float:
        """Hold ``command`` back for about ``wait_seconds`` (one step of the deferral ladder; a
        copy back before it is due is deferred again). Returns the step taken."""
        step = defer_step(wait_seconds)
        await self._publish_delayed(command, self._topology.defer_queue_spec(step))
        return step

    async def _publish_delayed(self, command: SendCommand, spec: QueueSpec) -> str:
        if spec.name not in self._declared:
            if self.prepare_delay_queue is not None:
                await self.prepare_delay_queue(spec)
            await self._channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            self._declared.add(spec.name)
        await self.publish_to_delay_queue(command, spec.name)
        return spec.name

    async def publish_to_delay_queue(self, command: SendCommand, queue: str) -> None:
        """Publish ``command`` to a declared delay queue, with the header that returns it to its send queue."""
        await self.declare_sender(command.sender)
        target = self._topology.send_queue_for(command.sender, command.priority)
        await self._publish(command.encode(), queue, command, {RETURN_HEADER: target})

    async def publish_raw(self, queue: str, body: bytes, headers: dict[str, Any], message_id: str | None) -> None:
        """A message as it is (a dead letter, a copy being moved), persistent and confirmed, to ``queue``."""
        message = aio_pika.Message(
            body,
            headers=headers,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)

    async def _publish(self, body: bytes, queue: str, command: SendCommand, headers: dict[str, Any] | None = None) -> None:
        message = aio_pika.Message(
            body,
            priority=command.priority.amqp,
            message_id=command.message_id,
            headers={ATTEMPT_HEADER: command.attempt, **(headers or {})},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
