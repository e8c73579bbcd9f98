"""Publishing the API's events: one long-lived, robust AMQP connection per web process.

The connection is opened at the first publish (the web server starts, and the console and
the status reads work, while RabbitMQ is down) and then kept: aio-pika's robust connection
reopens itself after an outage. Every publish is persistent, mandatory and confirmed
(``AsyncEventPublisher``); one that is not confirmed within ``timeout_seconds`` (the broker
down, or reconnecting) raises ``BrokerUnavailable``, and the API answers 503.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika.exceptions

from wanotify.producers import AsyncEventPublisher
from wanotify.producers.envelope import OutgoingEvent
from wanotify.producers.publisher import PublishError
from wanotify.shared.config import Settings
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 5


class BrokerUnavailable(Exception):
    """The broker did not confirm an event; nothing says it was published."""


class ApiPublisher:
    def __init__(self, settings: Settings, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._publisher = AsyncEventPublisher(settings.amqp_url, settings.namespace, source=None,
                                              topology=Topology.of(settings),
                                              connection_name=f"wanotify-api-{settings.namespace}")
        self.timeout_seconds = timeout_seconds
        self._connected = False
        self._connecting = asyncio.Lock()

    async def publish(self, event: OutgoingEvent) -> str:
        """The event's id, once the broker confirmed it; ``BrokerUnavailable`` otherwise."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._connect_once()
                return await self._publisher.publish_prepared(event)
        except (PublishError, TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError, OSError) as exc:
            log.warning("api: event %s not confirmed by the broker: %s", event.event_id, exc or type(exc).__name__)
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from None

    async def _connect_once(self) -> None:
        # One connection for every request: those arriving while it opens wait for it.
        async with self._connecting:
            if self._connected:
                return
            try:
                await self._publisher.connect()
            except BaseException:
                await self._publisher.close()  # a half-made connection would keep retrying in the background
                raise
            self._connected = True
            log.info("api: connected to the broker (one connection for this web process)")

    async def close(self) -> None:
        await self._publisher.close()
        self._connected = False
