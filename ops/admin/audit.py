"""The audit log: every operator action, from the console or the command line, in one table.

Call ``record`` in the same transaction as the action it describes, so an action that rolls
back leaves no entry and a committed one always has its entry. The console passes its
user's name as the actor; the command line passes ``cli_actor()`` (``cli:<os user>``).
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wanotify.shared.db.models import AuditEntry
from wanotify.shared.phone import mask_event_body

ACTOR_CHARS = 64
ACTION_CHARS = 40


def cli_actor() -> str:
    """The actor of a command-line action: the operating-system user who ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container with an arbitrary uid)
        user = "unknown"
    return f"cli:{user}"[:ACTOR_CHARS]


def record(session: Session, actor: str, action: str, *, target: dict[str, Any] | None = None,
           count: int | None = None, detail: str | None = None) -> AuditEntry:
    """Adds one entry (flushed, so its id is known): ``action`` is a dotted name like ``dead.replay``.

    ``target`` is the filter or the ids acted on, as JSON; never put a full phone number in it.
    """
    entry = AuditEntry(actor=actor[:ACTOR_CHARS], action=action[:ACTION_CHARS], target=target, count=count,
                       detail=detail)
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, *, before_id: int | None = None, limit: int = 50,
           actor: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Entries newest first; ``before_id`` continues a listing after its last entry."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    return [_view(e) for e in session.scalars(query)]


def _view(e: AuditEntry) -> dict[str, Any]:
    # Masked in case an action put a phone number in its target after all (a test send's recipient).
    target = None if e.target is None else json.loads(mask_event_body(json.dumps(e.target)))
    return {"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": target,
            "count": e.count, "detail": e.detail}
