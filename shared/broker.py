"""aio-pika plumbing both consumers use: a robust connection and confirmed publishing."""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from wanotify.shared.messages import ATTEMPT_HEADER, SendCommand
from wanotify.shared.topology import Topology, declare_topology_async

log = logging.getLogger(__name__)


# After a broker restart the connection is back within this long of the broker (aio-pika's
# default, 5 s, would stall sending for that long after every restart).
RECONNECT_INTERVAL_SECONDS = 1.0


async def connect(amqp_url: str, name: str) -> AbstractRobustConnection:
    """A connection that reconnects by itself and restores queues, consumers and QoS.

    The first connection attempt raises if the broker is unreachable; the consumers' runner
    waits and tries again (``wanotify.shared.startup``)."""
    return await aio_pika.connect_robust(amqp_url, client_properties={"connection_name": name},
                                         reconnect_interval=RECONNECT_INTERVAL_SECONDS)


async def confirmed_channel(connection: AbstractRobustConnection, prefetch: int) -> AbstractChannel:
    """A channel with publisher confirms; an unroutable publish raises instead of vanishing."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=prefetch)
    return channel


class SendQueuePublisher:
    """Publishes send commands, retry copies and dead letters, each confirmed by the broker."""

    def __init__(self, channel: AbstractChannel, topology: Topology) -> None:
        self._channel = channel
        self._topology = topology
        self._declared_retry_queues: set[str] = set()

    async def declare(self) -> None:
        await declare_topology_async(self._channel, self._topology)

    async def publish_send(self, command: SendCommand) -> None:
        await self._publish(command.encode(), self._topology.send_queue, command)

    async def publish_retry(self, command: SendCommand, delay_seconds: float) -> str:
        """Park ``command`` in the retry queue for this delay; it comes back when its TTL ends."""
        spec = self._topology.retry_queue_spec(delay_seconds)
        if spec.name not in self._declared_retry_queues:
            await self._channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            self._declared_retry_queues.add(spec.name)
        await self._publish(command.encode(), spec.name, command)
        return spec.name

    async def publish_dead(self, queue: str, body: bytes, headers: dict[str, Any], message_id: str | None) -> None:
        message = aio_pika.Message(
            body,
            headers=headers,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)

    async def _publish(self, body: bytes, queue: str, command: SendCommand) -> None:
        message = aio_pika.Message(
            body,
            priority=command.priority.amqp,
            message_id=command.message_id,
            headers={ATTEMPT_HEADER: command.attempt},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
