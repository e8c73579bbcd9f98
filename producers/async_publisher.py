"""An asyncio (aio-pika) publisher with confirms, mandatory routing and a robust connection."""

from __future__ import annotations

import time
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import DeliveryError

from wanotify.producers.envelope import OutgoingEvent, prepare
from wanotify.producers.publisher import PublishError
from wanotify.shared.broker import connect
from wanotify.shared.topology import Topology, declare_topology_async


class AsyncEventPublisher:
    """``await publish(...)`` returns once the broker confirmed; many may run concurrently.

    A robust connection reopens a lost connection and restores the channel (on another node when
    ``amqp_url`` lists a cluster's nodes, comma-separated); a publish that hits the outage raises
    ``PublishError`` and may simply be retried (event_id makes it idempotent).
    """

    def __init__(self, amqp_url: str, namespace: str = "wanotify", *, source: str | None = None,
                 declare: bool = True, topology: Topology | None = None,
                 connection_name: str = "wanotify-publisher") -> None:
        self._url = amqp_url
        # A process with settings passes ``Topology.of(settings)``: its queue type must match the broker's queues.
        self._topology = topology or Topology(namespace)
        self._source = source
        self._declare = declare
        self._connection_name = connection_name  # how the broker's management UI lists the connection
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> AsyncEventPublisher:
        self._connection = await connect(self._url, self._connection_name)
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        if self._declare:
            await declare_topology_async(self._channel, self._topology)
        self._exchange = await self._channel.get_exchange(self._topology.events_exchange, ensure=False)
        return self

    async def publish(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None) -> str:
        """Publish one event and return its event_id."""
        return await self.publish_prepared(prepare(event_type, data, source=self._source, event_id=event_id))

    async def publish_prepared(self, event: OutgoingEvent) -> str:
        """Publish an envelope already validated and serialized (the HTTP API keeps the caller's
        ``occurred_at`` and ``source``); returns its event_id once the broker confirmed it."""
        if self._exchange is None:
            await self.connect()
        assert self._exchange is not None
        message = aio_pika.Message(
            event.body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.event_id, type=event.event_type, timestamp=int(time.time()),
        )
        try:
            await self._exchange.publish(message, routing_key=event.event_type, mandatory=True)
        except DeliveryError as exc:
            raise PublishError(f"event {event.event_type} was not delivered: {exc}") from None
        except (aio_pika.exceptions.AMQPError, ConnectionError) as exc:
            raise PublishError(f"publish of {event.event_id} failed: {exc!r}") from exc
        return event.event_id

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None

    async def __aenter__(self) -> AsyncEventPublisher:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
