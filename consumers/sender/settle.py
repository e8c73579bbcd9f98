"""Settling a delivery: the one place that acks, nacks or republishes a send-queue copy.

Everything that handles a delivery returns a decision value instead of calling the broker:

- ``Ack``: done (sent, recorded as failed/dead/cancelled, or a stale copy);
- ``Defer(seconds, reason)``: not due yet (recipient interval, daily limit, pair rate): a
  copy waits in a deferral queue and comes back; no attempt is spent;
- ``RetryLater(delay, command)``: the next attempt, through a retry queue;
- ``Park(reason, detail)``: into the dead-letter queue with its reason;
- ``Requeue``: back to the head of its queue (the sender stops, or a bug to look at again);
- ``Keep``: stays held, unacknowledged, for another look (a pause, a claim still in progress).

``Settler.apply`` carries the decision out. The log row is always committed before, so a
crash in between leaves a row that says what should happen; a publish that fails is then
left to the retry sweep (the row says when) or the copy is requeued (the row does not).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from wanotify.shared.messages import ATTEMPT_HEADER, DETAIL_HEADER, REASON_HEADER, SendCommand
from wanotify.shared.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Defer:
    seconds: float
    reason: str


@dataclass(frozen=True)
class RetryLater:
    delay_seconds: float


@dataclass(frozen=True)
class Park:
    reason: str  # a metric label and the dead letter's reason header
    detail: str
    # The log row already says dead: a failed publish is acked anyway (`dead list` works from the
    # row); otherwise the copy is requeued rather than lost.
    row_recorded: bool = True


@dataclass(frozen=True)
class Requeue:
    pass


@dataclass(frozen=True)
class Keep:
    pass


Settlement = Ack | Defer | RetryLater | Park | Requeue | Keep


class Delivery(Protocol):
    """What settling needs of a delivery (an aio-pika incoming message)."""

    body: bytes
    message_id: str | None

    def ack(self) -> Awaitable[Any]: ...

    def nack(self, multiple: bool = False, requeue: bool = True) -> Awaitable[Any]: ...


class Publisher(Protocol):
    """What settling needs of the send-queue publisher (``wanotify.shared.broker.SendQueuePublisher``)."""

    async def publish_retry(self, command: SendCommand, delay_seconds: float) -> str: ...

    async def publish_defer(self, command: SendCommand, wait_seconds: float) -> float: ...

    async def publish_raw(self, queue: str, body: bytes, headers: dict[str, Any], message_id: str | None) -> None: ...


class Settler:
    def __init__(self, publisher: Publisher, dead_queue: str, metrics: Metrics) -> None:
        self.publisher = publisher
        self.dead_queue = dead_queue
        self.metrics = metrics

    async def apply(self, delivery: Delivery, command: SendCommand | None, settlement: Settlement) -> bool:
        """Carry ``settlement`` out; False when the delivery stays held (``Keep``)."""
        if isinstance(settlement, Keep):
            return False
        if isinstance(settlement, Requeue):
            await _settle(delivery.nack(requeue=True))
            return True
        try:
            await self._publish(delivery, command, settlement)
        except Exception:
            log.exception("could not publish the follow-up (%s) of %s", type(settlement).__name__, delivery.message_id)
            if isinstance(settlement, Defer) or (isinstance(settlement, Park) and not settlement.row_recorded):
                await _settle(delivery.nack(requeue=True))  # nothing else would bring it back
                return True
        await _settle(delivery.ack())
        return True

    async def _publish(self, delivery: Delivery, command: SendCommand | None, settlement: Settlement) -> None:
        if isinstance(settlement, Defer):
            assert command is not None
            await self.publisher.publish_defer(command, settlement.seconds)
        elif isinstance(settlement, RetryLater):
            assert command is not None
            await self.publisher.publish_retry(command.next_attempt(), settlement.delay_seconds)
            self.metrics.retries.inc()
        elif isinstance(settlement, Park):
            headers: dict[str, Any] = {REASON_HEADER: settlement.reason, DETAIL_HEADER: settlement.detail[:1000]}
            if command is not None:
                headers[ATTEMPT_HEADER] = command.attempt
            await self.publisher.publish_raw(self.dead_queue, delivery.body, headers, delivery.message_id)
            self.metrics.messages_dead.labels(settlement.reason).inc()


async def _settle(action: Awaitable[Any]) -> None:
    """Ack/nack; if the channel died meanwhile the broker redelivers, and the copy check dedupes."""
    try:
        await action
    except Exception as exc:  # noqa: BLE001
        log.warning("could not settle a delivery (%s); it will be redelivered", exc)


settle = _settle
