"""Building send-queue copies from log rows: the next attempt of a message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wanotify.shared.db.models import MessageLog, Status
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority
from wanotify.shared.topology import DEFAULT_SENDER


def next_copy(row: Any) -> SendCommand:
    """The copy for the row's next call (works on ORM rows and on selected result rows), on the
    queues of the row's sender (rows from before senders existed, or selected without it: ``default``)."""
    return SendCommand(row.id, row.attempts + 1, Priority(row.priority), str(row.event_id), row.template,
                       row.first_attempt, getattr(row, "sender", None) or DEFAULT_SENDER)


@dataclass(frozen=True)
class ScheduledCopy:
    """A ``failed`` row's next copy and the retry time it had when it was read, or a deferred
    ``queued`` row's and the time it was held until (``deferred``)."""

    command: SendCommand
    scheduled_at: datetime | None
    deferred: bool = False


def failed_copies(session: Session, *, overdue_seconds: float | None, limit: int = 1000,
                  lock: bool = False) -> list[ScheduledCopy]:
    """Copies for ``failed`` rows, oldest first; nothing is changed.

    With ``overdue_seconds``, only rows whose scheduled retry is that late: their retry copy
    was lost (a crash between commit and publish, or a broker failure while dead-lettering).
    Without it, every failed row (``wanotify retry-failed``). Publish the copies, then call
    ``forget_schedule``: a publish that fails (or a crash before it) leaves the rows as they
    were, so they are taken again; a copy published twice is dropped by the sender as stale.
    """
    query = select(MessageLog).where(MessageLog.status == Status.FAILED).order_by(MessageLog.id).limit(limit)
    if overdue_seconds is not None:
        query = query.where(MessageLog.next_attempt_at < func.now() - timedelta(seconds=overdue_seconds))
    if lock:
        query = query.with_for_update(skip_locked=True)
    return [ScheduledCopy(next_copy(row), row.next_attempt_at) for row in session.scalars(query)]


def deferred_copies(session: Session, *, overdue_seconds: float, limit: int = 1000) -> list[ScheduledCopy]:
    """Copies for ``queued`` rows held back (recipient interval, daily limit, pair rate) until a
    time ``overdue_seconds`` past: their deferred copy was lost on its way back to the send queue
    (a broker failure while dead-lettering, which publisher confirms do not cover), oldest first.
    The same protocol as ``failed_copies``: publish, then ``forget_schedule``."""
    query = (select(MessageLog).where(MessageLog.status == Status.QUEUED,
                                      MessageLog.held_until < func.now() - timedelta(seconds=overdue_seconds))
             .order_by(MessageLog.id).limit(limit))
    return [ScheduledCopy(next_copy(row), row.held_until, deferred=True) for row in session.scalars(query)]


def forget_schedule(session: Session, copies: list[ScheduledCopy]) -> int:
    """After their copies were published: clear the retry time (or the hold) of rows that still
    wait for it.

    Compare-and-set on the time that was read, so a row that moved on meanwhile (sent, or
    failed or deferred again with a new time) is left alone. Returns how many rows were cleared.
    """
    cleared = 0
    for copy in copies:
        status, column = (Status.QUEUED, MessageLog.held_until) if copy.deferred else \
            (Status.FAILED, MessageLog.next_attempt_at)
        result = session.execute(
            update(MessageLog).where(
                MessageLog.id == copy.command.log_id,
                MessageLog.status == status,
                MessageLog.attempts == copy.command.attempt - 1,
                column.is_(None) if copy.scheduled_at is None else column == copy.scheduled_at,
            ).values({column: None}))
        cleared += result.rowcount  # type: ignore[attr-defined]
    return cleared
