"""The broker topology as data, and the one idempotent function that declares it.

Every process declares what it uses at start-up (declaring an existing entity with the same
arguments is a no-op), and ``ops/rabbitmq/definitions.json`` is generated from the same
values, so code and operators never disagree about a name or an argument.

**Send queues.** Each sender (one WhatsApp number, contract section 7) has one queue per
priority: ``{ns}.send.high``, ``{ns}.send.normal`` and ``{ns}.send.low`` for the ``default``
sender, ``{ns}.send.<sender>.<priority>`` for the others. Priority order does not rely on
``x-max-priority`` (quorum queues on RabbitMQ 3.10 have none): the sender holds the head of
each of its three queues and, when its slot opens, sends the highest one. The same design
works on classic and on quorum queues (``QUEUE_TYPE``).

**Delayed copies.** A retry (``{ns}.send.retry.<ms>ms``) or a deferral
(``{ns}.send.defer.<ms>ms``) waits in a queue with a TTL, then is dead-lettered to the
headers exchange ``{ns}.send.return``, which routes it by its ``x-wanotify-queue`` header back
to the send queue it came from. So one delay queue serves every sender and priority.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wanotify.shared.priority import Priority

if TYPE_CHECKING:
    from wanotify.shared.config import Settings

QueueArgs = dict[str, Any]

DEFAULT_SENDER = "default"
QUEUE_TYPES = ("classic", "quorum")
# The header a delayed copy carries: the send queue it returns to.
RETURN_HEADER = "x-wanotify-queue"
# Priorities in the order the sender takes them.
PRIORITY_ORDER = (Priority.HIGH, Priority.NORMAL, Priority.LOW)
# A sender's name (contract section 7), minus the words that name queues of their own.
SENDER_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
RESERVED_SENDER_NAMES = frozenset({"retry", "defer", "dead", "return", *(p.value for p in Priority)})
# Deferral delays come from this ladder (powers of two from 0.25 s to about 4.5 h): a copy hops
# through the longest step not past its due time, so a handful of queues serve any wait, and a
# copy is never back more than one step's precision early.
DEFER_STEPS_SECONDS: tuple[float, ...] = tuple(0.25 * 2**i for i in range(17))
# A poison message on a quorum send queue is dead-lettered after this many deliveries.
QUORUM_DELIVERY_LIMIT = 100


def check_sender_name(name: str) -> str:
    """``name`` if it may name a sender; ValueError saying why not."""
    if not SENDER_NAME.match(name):
        raise ValueError(f"a sender name is 1-32 of a-z, 0-9, '_' and '-', got {name!r}")
    if name in RESERVED_SENDER_NAMES:
        raise ValueError(f"{name!r} names queues of its own; choose another sender name")
    return name


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: QueueArgs = field(default_factory=dict)
    purpose: str = ""


@dataclass(frozen=True)
class Topology:
    """Every name wanotify uses on the broker, derived from one namespace prefix."""

    namespace: str = "wanotify"
    queue_type: str = "classic"

    @classmethod
    def of(cls, settings: Settings) -> Topology:
        return cls(settings.namespace, settings.queue_type)

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def status_exchange(self) -> str:
        """Status changes of messages, out to upstream apps (contract section 9)."""
        return f"{self.namespace}.status"

    @property
    def return_exchange(self) -> str:
        return f"{self.namespace}.send.return"

    @property
    def notifier_queue(self) -> str:
        return f"{self.namespace}.notifier"

    @property
    def events_dead_queue(self) -> str:
        return f"{self.namespace}.events.dead"

    @property
    def send_queue(self) -> str:
        """The ``default`` sender's send queues' common prefix (the contract's ``wanotify.send``)."""
        return self.sender_queue_prefix(DEFAULT_SENDER)

    def sender_queue_prefix(self, sender: str) -> str:
        base = f"{self.namespace}.send"
        return base if sender == DEFAULT_SENDER else f"{base}.{sender}"

    def send_queue_for(self, sender: str, priority: Priority) -> str:
        return f"{self.sender_queue_prefix(sender)}.{priority.value}"

    def send_queues(self, sender: str = DEFAULT_SENDER) -> list[str]:
        """One sender's send queues, highest priority first."""
        return [self.send_queue_for(sender, p) for p in PRIORITY_ORDER]

    @property
    def legacy_send_queue(self) -> str:
        """The one send queue of the release before the sender pool (``wanotify.consumers.sender.upgrade``)."""
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
        return f"{self.namespace}.send.retry.{retry_delay_ms(delay_seconds)}ms"

    def defer_queue(self, step_seconds: float) -> str:
        return f"{self.namespace}.send.defer.{retry_delay_ms(step_seconds)}ms"

    def queues(self) -> list[QueueSpec]:
        """The fixed queues, with the ``default`` sender's send queues (other senders' send
        queues come from ``sender_queue_specs``; delay queues are declared on demand)."""
        return [
            QueueSpec(self.notifier_queue, self._durable_args(), "events -> notification consumer"),
            QueueSpec(self.events_dead_queue, self._durable_args(), "events that could not become messages"),
            *self.sender_queue_specs(DEFAULT_SENDER),
            QueueSpec(self.send_dead_queue, self._durable_args(), "messages out of retries or permanently failed"),
        ]

    def sender_queue_specs(self, sender: str) -> list[QueueSpec]:
        arguments = self._durable_args() | {
            # Several sender processes may attach; only one receives at a time (and only the
            # holder of the sender's lease consumes at all).
            "x-single-active-consumer": True,
        }
        if self.queue_type == "quorum":
            # A message that keeps crashing its consumer is parked instead of redelivered forever.
            arguments |= {"x-delivery-limit": QUORUM_DELIVERY_LIMIT, "x-dead-letter-exchange": "",
                          "x-dead-letter-routing-key": self.send_dead_queue}
        return [QueueSpec(self.send_queue_for(sender, p), dict(arguments), f"{p.value}-priority messages -> sender {sender}")
                for p in PRIORITY_ORDER]

    def retry_queue_spec(self, delay_seconds: float) -> QueueSpec:
        return self._delay_spec(self.retry_queue(delay_seconds), delay_seconds, "delayed retry")

    def defer_queue_spec(self, step_seconds: float) -> QueueSpec:
        return self._delay_spec(self.defer_queue(step_seconds), step_seconds, "deferred (not yet due) messages")

    def _delay_spec(self, name: str, delay_seconds: float, purpose: str) -> QueueSpec:
        return QueueSpec(name, self._durable_args() | {
            "x-message-ttl": retry_delay_ms(delay_seconds),
            # Expired copies go back to their own send queue, named in their RETURN_HEADER.
            "x-dead-letter-exchange": self.return_exchange,
        }, purpose)

    def _durable_args(self) -> QueueArgs:
        if self.queue_type == "quorum":
            # At-least-once dead-lettering: a copy leaving a queue by TTL or delivery limit is
            # confirmed by its target before it is removed (needs reject-publish overflow).
            return {"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        return {"x-queue-type": "classic"}

    def exchanges(self) -> list[tuple[str, str]]:
        """(name, type) of every exchange."""
        return [(self.events_exchange, "topic"), (self.status_exchange, "topic"), (self.return_exchange, "headers")]

    def bindings(self) -> list[tuple[str, str, str]]:
        """(exchange, queue, routing key): the notifier takes every event type."""
        return [(self.events_exchange, self.notifier_queue, "#")]

    def return_bindings(self, sender: str) -> list[tuple[str, QueueArgs]]:
        """(queue, binding arguments): how delayed copies find their way back to ``sender``'s queues."""
        return [(name, {"x-match": "all", RETURN_HEADER: name}) for name in self.send_queues(sender)]


def retry_delay_ms(delay_seconds: float) -> int:
    return max(1, round(delay_seconds * 1000))


def defer_step(wait_seconds: float) -> float:
    """The deferral step for a copy due in ``wait_seconds``: the longest step not past it."""
    fitting = [s for s in DEFER_STEPS_SECONDS if s <= wait_seconds]
    return fitting[-1] if fitting else DEFER_STEPS_SECONDS[0]


def declare_topology(channel: Any, topology: Topology, senders: tuple[str, ...] = ()) -> None:
    """Declare the exchanges, the fixed queues, the named senders' queues and their bindings on
    a pika channel."""
    for name, kind in topology.exchanges():
        channel.exchange_declare(name, exchange_type=kind, durable=True)
    for spec in topology.queues():
        channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    for exchange, queue, key in topology.bindings():
        channel.queue_bind(queue, exchange, routing_key=key)
    for sender in {DEFAULT_SENDER, *senders}:
        for spec in topology.sender_queue_specs(sender):
            channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
        for queue, arguments in topology.return_bindings(sender):
            channel.queue_bind(queue, topology.return_exchange, routing_key="", arguments=arguments)


def delete_topology(channel: Any, topology: Topology, extra_queues: list[str] | tuple[str, ...] = (),
                    senders: tuple[str, ...] = ()) -> None:
    """Delete a namespace's queues (with the named extra and sender queues) and its exchanges,
    messages and all, on a pika channel: for tests, benchmarks and decommissioning a namespace.
    Deleting what does not exist is not an error in RabbitMQ."""
    sender_queues = [spec.name for sender in senders for spec in topology.sender_queue_specs(sender)]
    for name in [spec.name for spec in topology.queues()] + sender_queues + list(extra_queues):
        channel.queue_delete(name)
    for name, _kind in topology.exchanges():
        channel.exchange_delete(name)


async def declare_topology_async(channel: Any, topology: Topology, senders: tuple[str, ...] = ()) -> None:
    """The same declarations on an aio-pika channel."""
    import aio_pika

    exchanges = {name: await channel.declare_exchange(name, aio_pika.ExchangeType(kind), durable=True)
                 for name, kind in topology.exchanges()}
    for spec in topology.queues():
        await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    for exchange, queue, key in topology.bindings():
        bound = await channel.get_queue(queue, ensure=False)
        await bound.bind(exchanges[exchange], routing_key=key)
    for sender in {DEFAULT_SENDER, *senders}:
        await declare_sender_queues_async(channel, topology, sender, exchanges[topology.return_exchange])


async def declare_sender_queues_async(channel: Any, topology: Topology, sender: str, return_exchange: Any = None) -> None:
    """Declare one sender's send queues and their return bindings on an aio-pika channel."""
    import aio_pika

    if return_exchange is None:
        return_exchange = await channel.declare_exchange(topology.return_exchange, aio_pika.ExchangeType.HEADERS,
                                                         durable=True)
    for spec in topology.sender_queue_specs(sender):
        await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    for queue, arguments in topology.return_bindings(sender):
        bound = await channel.get_queue(queue, ensure=False)
        await bound.bind(return_exchange, routing_key="", arguments=arguments)
