"""The broker topology as data, and the one idempotent function that declares it.

Every process declares what it uses at start-up (declaring an existing entity with the same
arguments is a no-op), and ``ops/rabbitmq/definitions.json`` is generated from the same
values, so code and operators never disagree about a name or an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wanotify.shared.priority import MAX_PRIORITY

QueueArgs = dict[str, Any]


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: QueueArgs = field(default_factory=dict)
    purpose: str = ""


@dataclass(frozen=True)
class Topology:
    """Every name wanotify uses on the broker, derived from one namespace prefix."""

    namespace: str = "wanotify"

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def notifier_queue(self) -> str:
        return f"{self.namespace}.notifier"

    @property
    def events_dead_queue(self) -> str:
        return f"{self.namespace}.events.dead"

    @property
    def send_queue(self) -> str:
        return f"{self.namespace}.send"

    @property
    def send_dead_queue(self) -> str:
        return f"{self.namespace}.send.dead"

    def retry_queue(self, delay_seconds: float) -> str:
        """The retry queue for one delay.

        Messages expire only at the head of a RabbitMQ queue, so a short TTL queued behind a
        long one would wait for it: each delay gets a queue of its own, named after it, and a
        changed retry setting simply starts using a new queue.
        """
        return f"{self.send_queue}.retry.{retry_delay_ms(delay_seconds)}ms"

    def queues(self) -> list[QueueSpec]:
        """The fixed queues (retry queues are declared on demand, one per delay)."""
        return [
            QueueSpec(self.notifier_queue, {"x-queue-type": "classic"}, "events -> notification consumer"),
            QueueSpec(self.events_dead_queue, {"x-queue-type": "classic"}, "events that could not become messages"),
            QueueSpec(
                self.send_queue,
                {
                    "x-queue-type": "classic",
                    # Priority needs a classic queue (quorum queues on 3.x reject it).
                    "x-max-priority": MAX_PRIORITY,
                    # Several sender replicas may attach; only one receives at a time.
                    "x-single-active-consumer": True,
                },
                "rendered messages -> sender",
            ),
            QueueSpec(self.send_dead_queue, {"x-queue-type": "classic"}, "messages out of retries or permanently failed"),
        ]

    def retry_queue_spec(self, delay_seconds: float) -> QueueSpec:
        return QueueSpec(
            self.retry_queue(delay_seconds),
            {
                "x-queue-type": "classic",
                "x-message-ttl": retry_delay_ms(delay_seconds),
                # Expired messages go straight back to the send queue via the default exchange.
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.send_queue,
            },
            "delayed retry",
        )

    def bindings(self) -> list[tuple[str, str, str]]:
        """(exchange, queue, routing key): the notifier takes every event type."""
        return [(self.events_exchange, self.notifier_queue, "#")]


def retry_delay_ms(delay_seconds: float) -> int:
    return max(1, round(delay_seconds * 1000))


def declare_topology(channel: Any, topology: Topology) -> None:
    """Declare the exchange, the fixed queues and their bindings on a pika channel."""
    channel.exchange_declare(topology.events_exchange, exchange_type="topic", durable=True)
    for spec in topology.queues():
        channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    for exchange, queue, key in topology.bindings():
        channel.queue_bind(queue, exchange, routing_key=key)


def delete_topology(channel: Any, topology: Topology, retry_queues: list[str] | tuple[str, ...] = ()) -> None:
    """Delete a namespace's queues (with the named retry queues) and its exchange, messages and
    all, on a pika channel: for tests, benchmarks and decommissioning a namespace. Deleting
    what does not exist is not an error in RabbitMQ."""
    for name in [spec.name for spec in topology.queues()] + list(retry_queues):
        channel.queue_delete(name)
    channel.exchange_delete(topology.events_exchange)


async def declare_topology_async(channel: Any, topology: Topology) -> None:
    """The same declarations on an aio-pika channel."""
    import aio_pika

    exchange = await channel.declare_exchange(topology.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    for spec in topology.queues():
        await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    for _exchange, queue, key in topology.bindings():
        bound = await channel.get_queue(queue, ensure=False)
        await bound.bind(exchange, routing_key=key)
