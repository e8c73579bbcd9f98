"""A blocking (pika) publisher with confirms, mandatory routing and reconnection."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPChannelError, AMQPConnectionError, NackError, UnroutableError

from wanotify.producers.envelope import prepare
from wanotify.shared.errors import WanotifyError
from wanotify.shared.topology import Topology, declare_topology
from wanotify.shared.urls import amqp_urls

log = logging.getLogger(__name__)


class PublishError(WanotifyError):
    """The broker did not take the event (unroutable, nacked, or unreachable)."""


class EventPublisher:
    """Publishes events to ``{namespace}.events``; ``publish`` returns once the broker confirmed.

    An unroutable event (nothing bound for its routing key) raises instead of vanishing. A lost
    connection is reopened and the publish tried again, ``reconnect_attempts`` times.
    ``amqp_url`` may list the nodes of a cluster, comma-separated: a connection goes to the
    first that answers, starting after the node that failed last.
    """

    def __init__(self, amqp_url: str, namespace: str = "wanotify", *, source: str | None = None,
                 reconnect_attempts: int = 3, declare: bool = True, topology: Topology | None = None) -> None:
        self._params = [pika.URLParameters(url) for url in amqp_urls(amqp_url)]
        for params in self._params:
            params.client_properties = {"connection_name": "wanotify-publisher"}
        # A process with settings passes ``Topology.of(settings)``: its queue type must match the broker's
        # queues (declaring a quorum queue as classic is refused).
        self._topology = topology or Topology(namespace)
        self._source = source
        self._attempts = reconnect_attempts
        self._declare = declare
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def publish(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None) -> str:
        """Publish one event and return its event_id (the idempotency key)."""
        event = prepare(event_type, data, source=self._source, event_id=event_id)
        properties = pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, message_id=event.event_id,
            timestamp=int(time.time()), type=event.event_type,
        )
        for attempt in range(1, self._attempts + 2):
            try:
                self._ensure_channel().basic_publish(
                    self._topology.events_exchange, event.event_type, event.body, properties, mandatory=True)
                return event.event_id
            except UnroutableError:
                raise PublishError(f"event {event.event_type} was unroutable: no queue is bound for it") from None
            except NackError:
                raise PublishError(f"the broker refused event {event.event_id}") from None
            except (AMQPConnectionError, AMQPChannelError) as exc:
                self._reset()
                self._move_on()
                if attempt > self._attempts:
                    raise PublishError(f"broker unreachable after {attempt} tries: {exc!r}") from exc
                log.warning("publish failed (%r); reconnecting", exc)
                time.sleep(min(0.5 * attempt, 2.0))
        raise AssertionError("unreachable")

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            self._reset()
            self._connection = pika.BlockingConnection(self._params)  # pika tries each node in turn
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            if self._declare:
                declare_topology(self._channel, self._topology)
        return self._channel

    def _move_on(self) -> None:
        """Try the node after the one that failed first next time (a no-op with one URL)."""
        self._params.append(self._params.pop(0))

    def _reset(self) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._connection = self._channel = None

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
