"""The lease: only one process sends for a number (sender) at a time.

A process holds a sender's lease in its ``sender_state`` row (``lease_holder``,
``lease_expires_at``), renewed every heartbeat; a lease not renewed for ``LEASE_SECONDS`` is
free to take. Only the holder consumes the sender's three queues, and the claim checks the
lease again under the row lock, so even a holder that has not yet noticed its loss cannot
send. The row also carries the sender's pause, read in the same renewal, so a paused lane
sleeps without asking the database.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.sender import liveness
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import SenderState

LEASE_SECONDS = 5.0  # a holder silent this long has lost its lease
RENEW_SECONDS = 1.0  # how often the holder renews (the heartbeat)


def may_hold(holder: str | None, expires_at: datetime | None, me: str, now: datetime) -> bool:
    """Whether ``me`` may take or keep a lease that ``holder`` has until ``expires_at``. Pure."""
    return holder is None or holder == me or expires_at is None or expires_at <= now


@dataclass(frozen=True)
class LaneState:
    """What one renewal says about a sender."""

    held: bool  # this process holds the lease now
    paused_until: datetime | None = None
    pause_reason: str | None = None
    now: datetime | None = None  # the database clock at the renewal

    def pause_left(self) -> float:
        """Seconds the sender's pause still runs (0 when not paused)."""
        if self.paused_until is None or self.now is None:
            return 0.0
        return max(0.0, (self.paused_until - self.now).total_seconds())


class LeaseStore(abc.ABC):
    """Where leases live; the PostgreSQL one below, a fake in the unit tests."""

    @abc.abstractmethod
    def renew(self, senders: list[str], me: str) -> dict[str, LaneState]:
        """Take or keep the lease of every sender ``me`` may hold; say which it holds."""

    @abc.abstractmethod
    def release(self, senders: list[str], me: str) -> None:
        """Give up ``me``'s leases of these senders, so another process takes them at once."""


class PgLeaseStore(LeaseStore):
    def __init__(self, sessions: sessionmaker[Session], namespace: str, seconds: float = LEASE_SECONDS) -> None:
        self.sessions = sessions
        self.namespace = namespace
        self.seconds = seconds

    def renew(self, senders: list[str], me: str) -> dict[str, LaneState]:
        if not senders:
            return {}
        with transaction(self.sessions) as session:
            ensure_rows(session, self.namespace, senders)
            # Locked in name order: two processes renewing the same senders never deadlock.
            rows = session.execute(
                select(SenderState, func.clock_timestamp())
                .where(SenderState.namespace == self.namespace, SenderState.sender.in_(senders))
                .order_by(SenderState.sender).with_for_update(of=SenderState)
                .execution_options(populate_existing=True)).all()
            states = {}
            for state, now in rows:
                # A holder known dead (it said it stopped, or its pid is gone on this host) need not
                # be waited out: its calls are over.
                holder = state.lease_holder
                held = may_hold(holder, state.lease_expires_at, me, now) or (
                    holder is not None and not liveness.is_alive(session, holder, now))
                if held:
                    state.lease_holder, state.lease_expires_at = me, now + timedelta(seconds=self.seconds)
                states[state.sender] = LaneState(held, state.paused_until, state.pause_reason, now)
            return states

    def release(self, senders: list[str], me: str) -> None:
        if not senders:
            return
        with transaction(self.sessions) as session:
            session.execute(update(SenderState).where(
                SenderState.namespace == self.namespace, SenderState.sender.in_(senders),
                SenderState.lease_holder == me).values(lease_holder=None, lease_expires_at=None))


def ensure_rows(session: Session, namespace: str, senders: list[str]) -> None:
    session.execute(insert(SenderState).values([{"namespace": namespace, "sender": s} for s in senders])
                    .on_conflict_do_nothing())


class LeaseFields(Protocol):
    """A number's lease, as the claim's locking read returns it from the number's state row."""

    @property
    def lease_holder(self) -> str | None: ...

    @property
    def lease_expires_at(self) -> datetime | None: ...


def holds(state: LeaseFields, me: str, now: datetime) -> bool:
    """Whether ``me`` holds this row's lease right now (the claim's check, under the row lock)."""
    return state.lease_holder == me and state.lease_expires_at is not None and state.lease_expires_at > now
