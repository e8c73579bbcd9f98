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
from wanotify.shared.db.models import SenderState

# Until resumed: far beyond any quality pause (at most a week), near enough for every datetime type.
BY_HAND_FOR = timedelta(days=365 * 100)
BY_HAND = "paused by hand"
# Senders other than the environment's single number come with the sender pool (contract section 7).
SENDERS = ("default",)
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
    by_hand = reason.startswith(BY_HAND)
    return Pause(by_hand, None if by_hand else state.paused_until, reason)


def _check_sender(sender: str) -> None:
    if sender not in SENDERS:
        raise ActionRefused(f"unknown sender {sender!r}: only 'default' exists until the sender pool is set up")


def pause(session: Session, namespace: str, actor: str, reason: str | None = None, sender: str = "default") -> Pause:
    """Hold every message of ``sender`` until ``resume``; the call in flight, if any, finishes."""
    _check_sender(sender)
    text = f"{BY_HAND} by {actor}" + (f": {reason.strip()}" if reason and reason.strip() else "")
    text = text[:REASON_CHARS]
    until = func.now() + BY_HAND_FOR
    session.execute(insert(SenderState).values(namespace=namespace, paused_until=until, pause_reason=text)
                    .on_conflict_do_update(index_elements=[SenderState.namespace],
                                           set_={"paused_until": until, "pause_reason": text}))
    record(session, actor, "sending.pause", target={"sender": sender}, detail=reason)
    return Pause(True, None, text)


def resume(session: Session, namespace: str, actor: str, sender: str = "default") -> Pause | None:
    """Lift the pause, whatever set it (by hand, or a quality limit an operator has dealt with);
    returns the pause that was lifted. The gap since the last call is still kept."""
    _check_sender(sender)
    state = session.scalars(select(SenderState).where(SenderState.namespace == namespace).with_for_update()).first()
    now = session.scalar(select(func.now()))
    assert now is not None
    lifted = current_pause(state, now)
    if state is not None:
        state.paused_until, state.pause_reason = None, None
    record(session, actor, "sending.resume", target={"sender": sender},
           detail=f"lifted: {lifted.reason}" if lifted else "was not paused")
    return lifted
