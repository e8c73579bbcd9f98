"""Building send-queue copies from log rows: the next attempt of a message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.models import MessageLog, Status
from shared.messages import SendCommand
from shared.priority import Priority


def next_copy(row: Any) -> SendCommand:
    """The copy for the row's next call (works on ORM rows and on selected result rows)."""
    return SendCommand(row.id, row.attempts + 1, Priority(row.priority), str(row.event_id), row.template,
                       row.first_attempt)


def failed_copies(session: Session, *, overdue_seconds: float | None, limit: int = 1000) -> list[SendCommand]:
    """Copies for ``failed`` rows, and forget their scheduled time so they are taken only once.

    With ``overdue_seconds``, only rows whose scheduled retry is that late: their retry copy
    was lost (a crash between commit and publish, or a broker failure while dead-lettering).
    Without it, every failed row (``wanotify retry-failed``).
    """
    query = select(MessageLog).where(MessageLog.status == Status.FAILED).order_by(MessageLog.id).limit(limit)
    if overdue_seconds is not None:
        query = query.where(MessageLog.next_attempt_at < func.now() - timedelta(seconds=overdue_seconds))
    rows = session.scalars(query.with_for_update(skip_locked=True)).all()
    if rows:
        session.execute(update(MessageLog).where(MessageLog.id.in_([r.id for r in rows])).values(next_attempt_at=None))
    return [next_copy(row) for row in rows]
