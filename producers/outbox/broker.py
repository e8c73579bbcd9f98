"""The relay's side of RabbitMQ: a blocking channel with publisher confirms."""

from __future__ import annotations

import contextlib
import time

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError, UnroutableError

from wanotify.shared.topology import Topology, declare_topology

CONNECTION_NAME = "wanotify-outbox-relay"


class RelayBrokerError(Exception):
    """The broker did not take an event (nacked or unroutable): it stays in the outbox."""


class RelayBroker:
    """A blocking channel with publisher confirms: ``publish`` returns once the broker has the event."""

    def __init__(self, amqp_url: str, topology: Topology, declare: bool) -> None:
        self._params = pika.URLParameters(amqp_url)
        self._params.client_properties = {"connection_name": CONNECTION_NAME}
        self._topology = topology
        self._declare = declare
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def publish(self, event_id: str, event_type: str, body: str) -> None:
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
                                          message_id=event_id, type=event_type, timestamp=int(time.time()))
        try:
            self._open().basic_publish(self._topology.events_exchange, event_type, body.encode(), properties,
                                       mandatory=True)
        except UnroutableError:
            raise RelayBrokerError(f"event {event_id} ({event_type}) was unroutable: no queue is bound to "
                                   f"{self._topology.events_exchange} for it; is wanotify's topology declared?") from None
        except NackError:
            raise RelayBrokerError(f"the broker refused event {event_id}") from None

    def keep_alive(self) -> None:
        """Answer heartbeats while idle (a blocking connection only does while called)."""
        if self._connection is not None and self._connection.is_open:
            self._connection.process_data_events(time_limit=0)

    def _open(self) -> BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            self.close()
            self._connection = pika.BlockingConnection(self._params)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            if self._declare:
                declare_topology(self._channel, self._topology)
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # already broken
                connection.close()
