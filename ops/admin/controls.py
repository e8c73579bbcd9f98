"""What the console's Actions page shows before an operator acts: the sender's pause, how many
messages wait (what clearing the queue would cancel), how many failed (what retry-failed would
send again), and the templates an urgent message may use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.ops.admin.actions import count_failed, count_waiting
from wanotify.ops.admin.pausing import current_pause
from wanotify.shared.db.models import SenderState, Template
from wanotify.shared.topology import DEFAULT_SENDER

FAILED_LIMIT = 10000  # as `wanotify retry-failed` (its --limit default)


def state(session: Session, namespace: str) -> dict[str, Any]:
    now = session.scalar(select(func.now()))
    assert now is not None
    pause = current_pause(session.get(SenderState, (namespace, DEFAULT_SENDER)), now)
    return {
        "pause": pause.as_dict() if pause else None,
        "waiting": count_waiting(session),
        "failed": count_failed(session, FAILED_LIMIT),
        "templates": list(session.scalars(select(Template.key).where(Template.active).order_by(Template.key))),
    }
