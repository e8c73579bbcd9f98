"""Inspecting, replaying and purging parked messages and events.

The database mirrors both dead-letter queues and is what admins search (by reason,
template, age); the queues hold the parked copies operators see in the management UI. A
replay or purge changes the rows first, then walks the queue once, taking out the copies it
acted on and putting the others back at the tail.

IDs name the kind: ``m42`` is the message (log row) 42, ``e7`` the parked event 7.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.copies import next_copy
from shared.db.models import DeadEvent, MessageLog, Status
from shared.messages import SendCommand
from shared.phone import mask_event_body, mask_phone


@dataclass(frozen=True)
class DeadFilter:
    ids: tuple[str, ...] = ()
    reason: str | None = None
    template: str | None = None
    older_than: timedelta | None = None
    kind: str = "all"  # "messages", "events" or "all"

    def message_ids(self) -> list[int]:
        return [int(i[1:]) for i in self.ids if i.startswith("m")]

    def event_ids(self) -> list[int]:
        return [int(i[1:]) for i in self.ids if i.startswith("e")]


def parse_id(raw: str) -> str:
    """Validate an ``m<digits>`` / ``e<digits>`` id."""
    if len(raw) < 2 or raw[0] not in "me" or not raw[1:].isdigit():
        raise ValueError(f"{raw!r} is not a dead-letter id: use m<number> for messages, e<number> for events")
    return raw


def _messages_query(f: DeadFilter):  # type: ignore[no-untyped-def]
    query = select(MessageLog).where(MessageLog.status == Status.DEAD).order_by(MessageLog.updated_at)
    if f.ids:
        query = query.where(MessageLog.id.in_(f.message_ids()))
    if f.reason:
        query = query.where(MessageLog.error_code == f.reason)
    if f.template:
        query = query.where(MessageLog.template == f.template)
    if f.older_than:
        query = query.where(MessageLog.updated_at < func.now() - f.older_than)
    return query


def _events_query(f: DeadFilter):  # type: ignore[no-untyped-def]
    query = select(DeadEvent).where(DeadEvent.status == "parked").order_by(DeadEvent.parked_at)
    if f.ids:
        query = query.where(DeadEvent.id.in_(f.event_ids()))
    if f.reason:
        query = query.where(DeadEvent.reason == f.reason)
    if f.template:
        query = query.where(DeadEvent.detail.contains(f.template))
    if f.older_than:
        query = query.where(DeadEvent.parked_at < func.now() - f.older_than)
    return query


def list_dead(session: Session, f: DeadFilter, limit: int = 100) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if f.kind in ("messages", "all") and (not f.ids or f.message_ids()):
        rows += [_message_view(m) for m in session.scalars(_messages_query(f).limit(limit))]
    if f.kind in ("events", "all") and (not f.ids or f.event_ids()):
        rows += [_event_view(e) for e in session.scalars(_events_query(f).limit(limit))]
    return rows


def _message_view(m: MessageLog) -> dict[str, Any]:
    return {
        "id": f"m{m.id}", "kind": "message", "reason": m.error_code, "template": m.template,
        "recipient": mask_phone(m.recipient), "attempts": m.attempts, "error": m.last_error,
        "event_id": str(m.event_id), "parked_at": m.updated_at,
    }


def _event_view(e: DeadEvent) -> dict[str, Any]:
    return {
        "id": f"e{e.id}", "kind": "event", "reason": e.reason, "template": None, "event_type": e.event_type,
        "error": e.detail, "event_id": e.event_id, "parked_at": e.parked_at,
    }


def show(session: Session, dead_id: str) -> dict[str, Any] | None:
    if dead_id.startswith("m"):
        m = session.get(MessageLog, int(dead_id[1:]))
        return None if m is None else _message_view(m) | {"status": m.status, "body": m.body}
    e = session.get(DeadEvent, int(dead_id[1:]))
    if e is None:
        return None
    # The parked body is the event as published: its phone number is masked like everywhere else.
    return _event_view(e) | {"status": e.status, "body": mask_event_body(e.body.decode("utf-8", errors="replace"))}


@dataclass
class ReplayPlan:
    messages: list[SendCommand]
    events: list[tuple[int, str, bytes, str | None]]  # (dead id, routing key, body, event_id)


def take_for_replay(session: Session, f: DeadFilter, limit: int) -> ReplayPlan:
    """Mark the selected dead letters as replayed and return what to publish.

    A message goes back to ``queued`` with a fresh retry budget and is sent again as the same
    log row; an event is published again and re-rendered by the notifier (its event_id
    makes that idempotent). Rows already replayed are no longer dead, so a second replay of
    the same ids finds nothing to do.
    """
    plan = ReplayPlan([], [])
    if f.kind in ("messages", "all") and (not f.ids or f.message_ids()):
        for m in session.scalars(_messages_query(f).limit(limit).with_for_update(skip_locked=True)):
            m.status, m.first_attempt, m.updated_at = Status.QUEUED, m.attempts + 1, func.now()
            plan.messages.append(next_copy(m))
    if f.kind in ("events", "all") and (not f.ids or f.event_ids()):
        for e in session.scalars(_events_query(f).limit(limit).with_for_update(skip_locked=True)):
            e.status, e.replayed_at = "replayed", func.now()
            plan.events.append((e.id, e.event_type or "unknown", e.body, e.event_id))
    return plan


def take_for_purge(session: Session, f: DeadFilter, limit: int) -> tuple[set[int], set[int]]:
    """Mark the selected dead letters as purged; returns (message ids, dead event ids)."""
    messages: set[int] = set()
    events: set[int] = set()
    if f.kind in ("messages", "all") and (not f.ids or f.message_ids()):
        messages = {m.id for m in session.scalars(_messages_query(f).limit(limit).with_for_update(skip_locked=True))}
        if messages:
            session.execute(update(MessageLog).where(MessageLog.id.in_(messages)).values(
                status=Status.CANCELLED, updated_at=func.now(),
                last_error=func.concat("purged from dead letters: ", MessageLog.last_error)))
    if f.kind in ("events", "all") and (not f.ids or f.event_ids()):
        events = {e.id for e in session.scalars(_events_query(f).limit(limit).with_for_update(skip_locked=True))}
        if events:
            session.execute(update(DeadEvent).where(DeadEvent.id.in_(events)).values(status="purged"))
    return messages, events
