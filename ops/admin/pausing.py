"""Holding and restarting sending by hand, without stopping any process.

The sender already honours ``sender_state.paused_until``: a paused sender holds the message
it has and looks again every second (``consumers/sender/store.py``, ``claim``). A pause by
hand is that same pause, until a time far enough away to mean "until resumed", with a reason
that says who paused and why; ``status`` tells it from a quality pause by that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.ops.admin.audit import record
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.db.models import SenderRow, SenderState
from wanotify.shared.sender_report import BY_HAND, until_resumed
from wanotify.shared.topology import DEFAULT_SENDER

# Until resumed: far beyond any quality pause (at most a week), near enough for every datetime type.
BY_HAND_FOR = timedelta(days=365 * 100)
REASON_CHARS = 500


@dataclass(frozen=True)
class Pause:
    """The sender's pause as people read it: by hand (until resumed) or after a quality limit."""

    by_hand: bool
    until: datetime | None  # None when paused by hand: it lasts until someone resumes
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "by_hand" if self.by_hand else "quality", "until": self.until, "reason": self.reason}


def current_pause(state: SenderState | None, now: datetime) -> Pause | None:
    """The pause in force at ``now``, if any."""
    if state is None or state.paused_until is None or state.paused_until <= now:
        return None
    reason = state.pause_reason or ""
    indefinite = until_resumed(reason, state.paused_until, now)
    return Pause(reason.startswith(BY_HAND), None if indefinite else state.paused_until, reason)


def check_sender(session: Session, sender: str) -> None:
    """``ActionRefused`` unless ``sender`` names a sender: a row of ``senders``, or ``default``
    while there are none (the environment's single number)."""
    names = list(session.scalars(select(SenderRow.name).order_by(SenderRow.name)))
    if sender in names or (not names and sender == DEFAULT_SENDER):
        return
    known = ", ".join(names) if names else DEFAULT_SENDER
    raise ActionRefused(f"unknown sender {sender!r} (senders: {known}) — `wanotify senders list` shows them")


def pause(session: Session, namespace: str, actor: str, reason: str | None = None, sender: str = DEFAULT_SENDER,
          *, duration: timedelta | None = None) -> Pause:
    """Hold every message of ``sender`` until ``resume`` (or for ``duration``); the call in
    flight, if any, finishes. Other senders keep sending."""
    check_sender(session, sender)
    if duration is not None and duration <= timedelta(0):
        raise ActionRefused("a pause needs a duration above 0 (like 30m or 2h), or none to pause until resumed")
    text = f"{BY_HAND} by {actor}" + (f": {reason.strip()}" if reason and reason.strip() else "")
    text = text[:REASON_CHARS]
    until = func.now() + (BY_HAND_FOR if duration is None else duration)
    stmt = insert(SenderState).values(namespace=namespace, sender=sender, paused_until=until, pause_reason=text)
    paused_until = session.execute(stmt.on_conflict_do_update(
        index_elements=[SenderState.namespace, SenderState.sender], set_={"paused_until": until, "pause_reason": text})
        .returning(SenderState.paused_until)).scalar_one()
    target: dict[str, Any] = {"sender": sender} | ({} if duration is None else {"seconds": duration.total_seconds()})
    record(session, actor, "sending.pause", target=target, detail=reason)
    return Pause(True, None if duration is None else paused_until, text)


def resume(session: Session, namespace: str, actor: str, sender: str = DEFAULT_SENDER) -> Pause | None:
    """Lift the pause, whatever set it (by hand, or a quality limit an operator has dealt with);
    returns the pause that was lifted. The gap since the last call is still kept."""
    check_sender(session, sender)
    state = session.scalars(select(SenderState).where(SenderState.namespace == namespace, SenderState.sender == sender)
                            .with_for_update()).first()
    now = session.scalar(select(func.now()))
    assert now is not None
    lifted = current_pause(state, now)
    if state is not None:
        state.paused_until, state.pause_reason = None, None
    record(session, actor, "sending.resume", target={"sender": sender},
           detail=f"lifted: {lifted.reason}" if lifted else "was not paused")
    return lifted
