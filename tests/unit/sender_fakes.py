"""Fakes of the sender's small interfaces (each subclasses the real one), for unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from wanotify.consumers.sender import budget, store
from wanotify.consumers.sender.choice import Rules
from wanotify.consumers.sender.claims import ClaimStore
from wanotify.consumers.sender.gate import Gate, NotDue
from wanotify.consumers.sender.lease import LaneState, LeaseStore, may_hold
from wanotify.consumers.sender.outcomes import CallRecord
from wanotify.shared.broker import SendQueuePublisher
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority
from wanotify.shared.senders import SenderConfig


class FakeLeaseStore(LeaseStore):
    """Leases in a dict, on a clock the test moves; ``down`` makes renewals fail like a lost database."""

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.leases: dict[str, tuple[str, datetime]] = {}
        self.paused: dict[str, datetime] = {}
        self.down = False

    def renew(self, senders: list[str], me: str) -> dict[str, LaneState]:
        if self.down:
            raise ConnectionError("database gone")
        states = {}
        for sender in senders:
            holder, expires = self.leases.get(sender, (None, None))
            held = may_hold(holder, expires, me, self.now)
            if held:
                self.leases[sender] = (me, self.now + timedelta(seconds=self.seconds))
            states[sender] = LaneState(held, self.paused.get(sender), "paused by a test" if sender in self.paused else None,
                                       self.now)
        return states

    def release(self, senders: list[str], me: str) -> None:
        for sender in senders:
            if self.leases.get(sender, (None,))[0] == me:
                del self.leases[sender]


class FakeDelivery:
    """A delivery that remembers how it was settled."""

    def __init__(self, body: bytes = b"{}", message_id: str | None = "1.1") -> None:
        self.body = body
        self.message_id = message_id
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        self.settled.append("requeue" if requeue else "drop")


class FakePublisher(SendQueuePublisher):
    """Keeps what it was asked to publish; ``fail`` makes every publish raise like a broker that went away."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.published: list[tuple[Any, ...]] = []

    def _check(self) -> None:
        if self.fail:
            raise ConnectionError("broker gone")

    async def publish_retry(self, command: SendCommand, delay_seconds: float) -> str:
        self._check()
        self.published.append(("retry", command.attempt, delay_seconds))
        return "retry-queue"

    async def publish_defer(self, command: SendCommand, wait_seconds: float) -> float:
        self._check()
        self.published.append(("defer", command.attempt, wait_seconds))
        return wait_seconds

    async def publish_raw(self, queue: str, body: bytes, headers: dict[str, Any], message_id: str | None) -> None:
        self._check()
        self.published.append(("dead", queue, headers))


class FakeClaimStore(ClaimStore):
    """Answers each claim with the next scripted one; remembers the claims and records made."""

    def __init__(self, *claims: store.Claim) -> None:
        self.claims = list(claims)
        self.asked: list[tuple[str, float]] = []  # (sender, gap) of each claim
        self.sent: list[tuple[int, str | None]] = []
        self.started: list[str] = []

    def claim(self, command: SendCommand, config: SenderConfig, gap: float, local_remaining: Callable[[float], float],
              in_flight: Callable[[int], bool], rules: Rules) -> store.Claim:
        self.asked.append((config.name, gap))
        return self.claims.pop(0)

    def call_started(self, session: Session, sender: str, recipient: str, seconds_ago: float) -> None:
        self.started.append(sender)

    def record_sent(self, command: SendCommand, recipient: str, call: CallRecord, provider_id: str | None) -> None:
        call.open(None)  # type: ignore[arg-type] - the fake keeps no session
        self.sent.append((command.log_id, provider_id))


class FakeGate(Gate):
    """A budget that says what the test tells it, and remembers what it was told."""

    def __init__(self, not_due: NotDue | None = None, pair_rate_seconds: float = 1.0) -> None:
        self.not_due = not_due
        self.pair_rate_seconds = pair_rate_seconds
        self.committed: list[tuple[str, str, datetime]] = []

    def check(self, session: Session, config: SenderConfig, recipient: str, priority: Priority,
              now: datetime) -> NotDue | None:
        return self.not_due

    def count(self, session: Session, config: SenderConfig, recipient: str, planned: datetime) -> budget.Counting:
        self.committed.append((config.name, recipient, planned))
        return budget.Counting()

    def pair_rate_hit(self, session: Session, recipient: str, now: datetime) -> float:
        return self.pair_rate_seconds

    def delivered(self, session: Session, recipient: str) -> None:
        pass
