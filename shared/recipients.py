"""What wanotify knows of a recipient: when they last wrote (their customer-service window)
and whether they opted out. Written by the webhook and the CLI, read before sending."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.shared.db.models import Recipient


def record_inbound(session: Session, phone: str, at: datetime) -> None:
    """The recipient wrote to us at ``at``: their window opens (never moves back)."""
    stmt = insert(Recipient).values(phone=phone, last_inbound_at=at)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Recipient.phone],
        set_={"last_inbound_at": func.greatest(Recipient.last_inbound_at, stmt.excluded.last_inbound_at),
              "updated_at": func.now()}))


def opt_out(session: Session, phone: str, source: str, reason: str | None = None) -> None:
    """Stop messages the opt-out scope covers; ``source`` says how (keyword, cli, meta_131050),
    ``reason`` in an operator's words. An earlier opt-out keeps its time."""
    stmt = insert(Recipient).values(phone=phone, opted_out_at=func.now(), opt_out_source=source, opt_out_reason=reason)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Recipient.phone],
        set_={"opted_out_at": func.coalesce(Recipient.opted_out_at, func.now()), "opt_out_source": source,
              "opt_out_reason": reason, "updated_at": func.now()}))


def opt_in(session: Session, phone: str) -> bool:
    """Undo an opt-out; True if there was one."""
    row = session.get(Recipient, phone, with_for_update=True)
    if row is None or row.opted_out_at is None:
        return False
    row.opted_out_at, row.opt_out_source, row.opt_out_reason, row.updated_at = None, None, None, func.now()
    return True


def window_open(recipient: Recipient | None, now: datetime, window_seconds: float) -> bool:
    """Whether free-form text may go to this recipient now."""
    last = recipient.last_inbound_at if recipient else None
    return last is not None and now - last < timedelta(seconds=window_seconds)


def opted_out(session: Session, limit: int = 1000) -> list[dict[str, Any]]:
    """Recipients who opted out, newest first (phones in E.164: mask them before showing)."""
    rows = session.scalars(select(Recipient).where(Recipient.opted_out_at.is_not(None))
                           .order_by(Recipient.opted_out_at.desc(), Recipient.phone).limit(limit))
    return [{"phone": r.phone, "opted_out_at": r.opted_out_at, "source": r.opt_out_source,
             "reason": r.opt_out_reason} for r in rows]
