"""Delivery receipts: a sent message moves forward to delivered and read, never backward.

Receipts may arrive out of order (read before delivered, delivered after read); ranking the
statuses makes a late, older receipt a no-op instead of a step back.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import MessageLog, Status

RANK = {Status.SENT: 1, Status.DELIVERED: 2, Status.READ: 3}


def apply_receipt(session: Session, provider_message_id: str, status: str, error: str | None = None) -> str:
    """Apply one receipt; returns what happened: ``moved``, ``ignored`` or ``unknown``."""
    row = session.scalars(
        select(MessageLog).where(MessageLog.provider_message_id == provider_message_id).with_for_update()
    ).first()
    if row is None:
        return "unknown"
    if status == "failed":
        # Accepted by the provider, then not deliverable: park it, so an admin can see and replay it.
        if row.status != Status.SENT:
            return "ignored"
        row.status, row.last_error, row.error_code = Status.DEAD, error or "failed after sending", "receipt_failed"
    elif status in RANK and row.status in RANK and RANK[Status(status)] > RANK[Status(row.status)]:
        row.status = Status(status)
    else:
        return "ignored"
    row.updated_at = func.now()
    return "moved"
