"""Finding messages and showing one: the console's Messages pages (and anything else that asks).

A search takes the phone number in any form the pipeline accepts — normalised with
``DEFAULT_REGION`` exactly as the notifier does — or an event id, a message id, a template,
a status and a date range (UTC days), and pages newest first by id (keyset: ``after`` is the
last id seen), so page 1,000 costs what page 1 does. Phone numbers leave here masked only,
also inside texts, errors and the event's variables.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from wanotify.shared.db.models import Attempt, MessageLog, Status, Template, WebhookReceipt
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.phone import mask_event_body, mask_phone, mask_phones_in_text, normalize_phone

PAGE_SIZE = 50


@dataclass(frozen=True)
class MessageQuery:
    phone: str | None = None  # E.164
    event_id: uuid.UUID | None = None
    message_id: int | None = None
    template: str | None = None
    status: str | None = None
    since: date | None = None  # first day included (UTC)
    until: date | None = None  # last day included (UTC)
    problems: tuple[str, ...] = field(default=())  # what could not be understood, one line each

    @property
    def empty(self) -> bool:
        return not any((self.phone, self.event_id, self.message_id, self.template, self.status, self.since,
                        self.until))


def parse_query(params: Mapping[str, str], default_region: str) -> MessageQuery:
    """A query from form fields (``phone``, ``event_id``, ``id``, ``template``, ``status``, ``from``, ``to``)."""
    problems: list[str] = []
    values = {
        "phone": _parse(params.get("phone"), lambda v: normalize_phone(v, default_region), problems),
        "event_id": _parse(params.get("event_id"), uuid.UUID, problems, "event id is not a UUID"),
        "message_id": _parse(params.get("id"), _message_id, problems, "message id is not a number"),
        "template": (params.get("template") or "").strip() or None,
        "status": _parse(params.get("status"), lambda v: Status(v).value, problems, "unknown status"),
        "since": _parse(params.get("from"), date.fromisoformat, problems, "'from' is not a date (YYYY-MM-DD)"),
        "until": _parse(params.get("to"), date.fromisoformat, problems, "'to' is not a date (YYYY-MM-DD)"),
    }
    return MessageQuery(**values, problems=tuple(problems))


def _message_id(raw: str) -> int:
    return int(raw.strip().lstrip("#m"))


def _parse(raw: str | None, parse: Any, problems: list[str], problem: str | None = None) -> Any:
    if raw is None or not raw.strip():
        return None
    try:
        return parse(raw.strip())
    except InvalidEvent as exc:
        problems.append(exc.detail)
    except ValueError:
        problems.append(problem or "not understood")
    return None


def search(session: Session, query: MessageQuery, after: int | None = None, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of matching messages, newest first; ``next_after`` continues it (None: the last page)."""
    if query.problems:
        return {"rows": [], "next_after": None}
    rows = list(session.scalars(_filtered(query, after).order_by(MessageLog.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"rows": [_row(m) for m in rows], "next_after": rows[-1].id if more and rows else None}


def _filtered(q: MessageQuery, after: int | None) -> Select[Any]:
    s = select(MessageLog)
    conditions: list[tuple[object, Callable[[], ColumnElement[bool]]]] = [
        (q.phone, lambda: MessageLog.recipient == q.phone),
        (q.event_id, lambda: MessageLog.event_id == q.event_id),
        (q.message_id is not None, lambda: MessageLog.id == q.message_id),
        (q.template, lambda: MessageLog.template == q.template),
        (q.status, lambda: MessageLog.status == q.status),
        (q.since, lambda: MessageLog.created_at >= _midnight(q.since)),
        (q.until, lambda: MessageLog.created_at < _midnight(q.until) + timedelta(days=1)),
        (after is not None, lambda: MessageLog.id < after),
    ]
    for present, condition in conditions:
        if present:
            s = s.where(condition())
    return s


def _midnight(day: date | None) -> datetime:
    assert day is not None
    return datetime.combine(day, time(0), tzinfo=UTC)


def _row(m: MessageLog) -> dict[str, Any]:
    return {"id": m.id, "created_at": m.created_at, "event_type": m.event_type, "template": m.template,
            "priority": m.priority, "status": m.status, "sender": m.sender, "recipient": mask_phone(m.recipient),
            "attempts": m.attempts,
            "sent_at": m.sent_at, "error": _masked_text(m.last_error)}


def detail(session: Session, message_id: int) -> dict[str, Any] | None:
    """One message with its text, every attempt, its receipts and the event's variables; None if unknown."""
    m = session.get(MessageLog, message_id)
    if m is None:
        return None
    return {**_row(m), "event_id": str(m.event_id), "body": _masked_text(m.body), "error_code": m.error_code,
            "queued_at": m.queued_at, "updated_at": m.updated_at, "next_attempt_at": m.next_attempt_at,
            "provider_message_id": m.provider_message_id, "sent_as": m.sent_as,
            "variables": _masked_variables(m.variables), "attempts_list": _attempts(session, m.id),
            "receipts": _receipts(session, m.provider_message_id)}


def _attempts(session: Session, log_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Attempt).where(Attempt.log_id == log_id).order_by(Attempt.attempt, Attempt.id))
    return [{"attempt": a.attempt, "started_at": a.started_at, "finished_at": a.finished_at, "outcome": a.outcome,
             "error": _masked_text(a.error), "error_code": a.error_code,
             "ms": None if a.finished_at is None else round((a.finished_at - a.started_at).total_seconds() * 1000)}
            for a in rows]


def _receipts(session: Session, provider_message_id: str | None) -> list[dict[str, Any]]:
    if not provider_message_id:
        return []
    rows = session.scalars(select(WebhookReceipt).where(WebhookReceipt.provider_message_id == provider_message_id)
                           .order_by(WebhookReceipt.provider_timestamp, WebhookReceipt.id))
    return [{"status": r.status, "at": r.provider_timestamp, "received_at": r.received_at, "outcome": r.outcome,
             "error": _masked_text(r.error)} for r in rows]


def _masked_variables(variables: dict[str, Any] | None) -> str | None:
    """The variables as indented JSON, every ``phone`` field and long digit run masked (None for old rows)."""
    if variables is None:
        return None
    return json.dumps(json.loads(mask_event_body(json.dumps(variables))), ensure_ascii=False, indent=2)


def _masked_text(text: str | None) -> str | None:
    return None if text is None else mask_phones_in_text(text)


def templates_in_use(session: Session) -> list[str]:
    """Template names to offer in the search form: the stored templates."""
    return list(session.scalars(select(Template.key).order_by(Template.key)))
