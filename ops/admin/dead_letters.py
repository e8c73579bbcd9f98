"""Inspecting, replaying and purging parked messages and events.

The database mirrors both dead-letter queues and is what admins search (by reason,
template, age); the queues hold the parked copies operators see in the management UI. A
replay or purge changes the rows first, then walks the queue once, taking out the copies it
acted on and putting the others back at the tail.

IDs name the kind: ``m42`` is the message (log row) 42, ``e7`` the parked event 7.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from wanotify.consumers.notifier.routing import reroute_rows
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.db.copies import next_copy
from wanotify.shared.db.models import DeadEvent, MessageLog, Rule, Status
from wanotify.shared.events import MAX_EVENT_BYTES, PARK_REASONS
from wanotify.shared.messages import SendCommand
from wanotify.shared.phone import mask_event_body, mask_phone

# Events parked because of their template: the template is derived from the rules (or, for
# notification.requested, from the event), so ``--template`` finds them too.
TEMPLATE_REASONS = ("template_error", "template_missing")
PURGED_PREFIX = "purged from dead letters: "

# What a parked message's reason (its error_code) can be: what the sender stores for the
# provider's last answer (consumers/providers/classify.py), why it refused to send it
# (consumers/sender/choice.py), or what parked it otherwise.
MESSAGE_REASONS = ("meta_<code> (e.g. meta_131026, meta_190)", "http_<status> (e.g. http_400, http_503)",
                   "timeout", "network", "internal", "gateway_invalid_number", "gateway_rejected",
                   "gateway_bad_response", "receipt_failed", "internal_error", "outcome_unknown",
                   "no_approved_template", "template_params", "template_paused", "template_disabled",
                   "template_rejected", "unstorable")
EVENT_REASONS = PARK_REASONS
# The two families of MESSAGE_REASONS named by a number: Meta's error code, or the HTTP status.
NUMBERED_REASON = re.compile(r"(meta|http)_[0-9]{1,9}")


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

    @property
    def wants_messages(self) -> bool:
        return self.kind in ("messages", "all") and (not self.ids or bool(self.message_ids()))

    @property
    def wants_events(self) -> bool:
        return self.kind in ("events", "all") and (not self.ids or bool(self.event_ids()))

    def target(self) -> dict[str, Any]:
        """The selection as the audit log keeps it."""
        if self.ids:
            return {"ids": list(self.ids)}
        chosen = {"kind": self.kind, "reason": self.reason, "template": self.template,
                  "older_than_seconds": self.older_than.total_seconds() if self.older_than else None}
        return {k: v for k, v in chosen.items() if v is not None}


AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_AGE = timedelta(days=3650)


def parse_age(raw: str) -> timedelta:
    """``45s``, ``30m``, ``2h``, ``7d`` as a time span, at most ten years; ValueError saying how to write one."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd])", raw.strip())
    if not match:
        raise ValueError(f"{raw!r} is not an age: use a number and a unit, e.g. 45s, 30m, 2h, 7d")
    seconds = float(match[1]) * AGE_UNITS[match[2]]
    if seconds > MAX_AGE.total_seconds():
        raise ValueError(f"{raw!r} is more than ten years ({MAX_AGE.days}d)")
    return timedelta(seconds=seconds)


def parse_id(raw: str) -> str:
    """Validate an ``m<digits>`` / ``e<digits>`` id."""
    if len(raw) < 2 or raw[0] not in "me" or not (raw[1:].isascii() and raw[1:].isdigit()) or len(raw) > 19:
        raise ValueError(f"{raw!r} is not a dead-letter id: use m<number> for messages, e<number> for events")
    return raw


def parse_reason(raw: str) -> str:
    """Validate a ``--reason`` filter: a reason items are really parked with. A typo would
    otherwise select nothing, and an empty list reads as "nothing is parked"."""
    if raw in EVENT_REASONS or raw in MESSAGE_REASONS or NUMBERED_REASON.fullmatch(raw):
        return raw
    known = dict.fromkeys([*EVENT_REASONS, *(r.split(" ")[0] for r in MESSAGE_REASONS)])  # internal_error is both
    raise ValueError(f"{raw!r} is not a reason items are parked with; use one of: {', '.join(known)}")


def _messages_query(f: DeadFilter) -> Select[MessageLog]:
    query = select(MessageLog).where(MessageLog.status == Status.DEAD).order_by(MessageLog.updated_at, MessageLog.id)
    if f.ids:
        query = query.where(MessageLog.id.in_(f.message_ids()))
    if f.reason:
        query = query.where(MessageLog.error_code == f.reason)
    if f.template:
        query = query.where(MessageLog.template == f.template)
    if f.older_than:
        query = query.where(MessageLog.updated_at < func.now() - f.older_than)
    return query


def _events_query(session: Session, f: DeadFilter) -> Select[DeadEvent]:
    query = select(DeadEvent).where(DeadEvent.status == "parked").order_by(DeadEvent.parked_at, DeadEvent.id)
    if f.ids:
        query = query.where(DeadEvent.id.in_(f.event_ids()))
    if f.reason:
        query = query.where(DeadEvent.reason == f.reason)
    if f.template:
        query = query.where(DeadEvent.id.in_(_events_of_template(session, f.template)))
    if f.older_than:
        query = query.where(DeadEvent.parked_at < func.now() - f.older_than)
    return query


Rules = dict[str, list[str | None]]  # event type -> its rules' templates (None: the event names it)


def _rules(session: Session) -> Rules:
    rules: Rules = {}
    for event_type, template in session.execute(select(Rule.event_type, Rule.template).where(Rule.active)):
        rules.setdefault(event_type, []).append(template)
    return rules


def event_templates(rules: Rules, event_type: str | None, body: bytes) -> list[str]:
    """The templates a parked event was to be rendered with, as the notifier chooses them."""
    templates: list[str] = []
    for template in rules.get(event_type or "", []):
        named = template if template is not None else _named_template(body)
        if named and named not in templates:
            templates.append(named)
    return templates


def _named_template(body: bytes) -> str | None:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    template = data.get("template") if isinstance(data, dict) else None
    return template if isinstance(template, str) else None


def _events_of_template(session: Session, template: str) -> list[int]:
    """Parked events whose template failed, and is ``template`` (derived per event: rules may
    name several templates, and notification.requested names its own)."""
    rules = _rules(session)
    candidates = session.execute(select(DeadEvent.id, DeadEvent.event_type, DeadEvent.body).where(
        DeadEvent.status == "parked", DeadEvent.reason.in_(TEMPLATE_REASONS)))
    return [dead_id for dead_id, event_type, body in candidates if template in event_templates(rules, event_type, body)]


def list_dead(session: Session, f: DeadFilter, limit: int = 100) -> list[dict[str, Any]]:
    """Parked messages and events, oldest first (by when they were parked)."""
    rows: list[dict[str, Any]] = []
    if f.wants_messages:
        rows += [_message_view(m) for m in session.scalars(_messages_query(f).limit(limit))]
    if f.wants_events:
        rules = _rules(session)
        rows += [_event_view(e, rules) for e in session.scalars(_events_query(session, f).limit(limit))]
    rows.sort(key=lambda row: (row["parked_at"], row["id"][0], int(row["id"][1:])))
    return rows[:limit]


def count_dead(session: Session, f: DeadFilter, limit: int, *, replay: bool = False) -> dict[str, int]:
    """How many messages and events an action on ``f`` would take (a dry run); a replay leaves
    events parked as too large where they are."""
    counts = {"messages": 0, "events": 0}
    if f.wants_messages:
        counts["messages"] = _count(session, _messages_query(f).limit(limit))
    if f.wants_events:
        events = _events_query(session, f)
        if replay:
            events = events.where(DeadEvent.body_truncated.is_(False))
        counts["events"] = _count(session, events.limit(limit))
    return counts


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _message_view(m: MessageLog) -> dict[str, Any]:
    return {
        "id": f"m{m.id}", "kind": "message", "reason": m.error_code, "template": m.template,
        "event_type": m.event_type, "recipient": mask_phone(m.recipient), "attempts": m.attempts, "error": m.last_error,
        "event_id": str(m.event_id), "parked_at": m.updated_at,
    }


def _event_view(e: DeadEvent, rules: Rules) -> dict[str, Any]:
    templates = event_templates(rules, e.event_type, e.body) if e.reason in TEMPLATE_REASONS else []
    return {
        "id": f"e{e.id}", "kind": "event", "reason": e.reason, "template": ", ".join(templates) or None,
        "event_type": e.event_type, "recipient": None, "attempts": None, "error": e.detail, "event_id": e.event_id,
        "parked_at": e.parked_at,
    }


def show(session: Session, dead_id: str) -> dict[str, Any]:
    """Everything about one parked message or event; ``ActionRefused`` if it is not parked."""
    number = int(dead_id[1:])
    if dead_id.startswith("m"):
        m = session.get(MessageLog, number)
        if m is None:
            raise ActionRefused(f"there is no message {dead_id} — `wanotify dead list` shows the dead letters")
        if m.status != Status.DEAD:
            raise ActionRefused(f"{dead_id} is not a dead letter: the message is {m.status}")
        return _message_view(m) | {"status": m.status, "body": m.body}
    e = session.get(DeadEvent, number)
    if e is None:
        raise ActionRefused(f"there is no parked event {dead_id} — `wanotify dead list` shows the dead letters")
    if e.status != "parked":
        raise ActionRefused(f"{dead_id} is not a dead letter any more: it was {e.status}")
    # The parked body is the event as published: its phone number is masked like everywhere else.
    body = mask_event_body(e.body.decode("utf-8", errors="replace"))
    return _event_view(e, _rules(session)) | {"status": e.status, "body": body}


def never_parked(session: Session, ids: tuple[str, ...]) -> list[str]:
    """The ids that name no dead letter, each with why. A dead letter already replayed or
    purged is not among them: doing that again is simply nothing to do."""
    problems = []
    for dead_id in ids:
        number = int(dead_id[1:])
        if dead_id.startswith("e"):
            if session.get(DeadEvent, number) is None:
                problems.append(f"{dead_id} (no such parked event)")
            continue
        m = session.get(MessageLog, number)
        if m is None:
            problems.append(f"{dead_id} (no such message)")
        elif m.status != Status.DEAD and not _was_parked(m):
            problems.append(f"{dead_id} (a {m.status} message, never parked)")
    return problems


def _was_parked(m: MessageLog) -> bool:
    # A replay starts a new retry budget; a purge leaves its mark in the error text.
    return m.first_attempt > 1 or (m.status == Status.CANCELLED and (m.last_error or "").startswith(PURGED_PREFIX))


def refuse_unknown(session: Session, f: DeadFilter, action: str) -> None:
    """Refuse the whole action when it names ids that are no dead letters."""
    problems = never_parked(session, f.ids)
    if problems:
        raise ActionRefused(f"nothing {action}: not dead letters: {', '.join(problems)} — "
                            "`wanotify dead list` shows the dead letters")


def refuse_too_large(session: Session, f: DeadFilter) -> None:
    """Refuse to replay events parked as too large: the limit has not changed, so they would only
    be parked again, and the database keeps only their head (the whole body is on the dead queue)."""
    if not f.event_ids():
        return
    found = session.scalars(select(DeadEvent.id).where(
        DeadEvent.id.in_(f.event_ids()), DeadEvent.status == "parked", DeadEvent.body_truncated)).all()
    if found:
        ids = " ".join(f"e{i}" for i in sorted(found))
        raise ActionRefused(f"nothing replayed: {ids} parked as too large (over {MAX_EVENT_BYTES} bytes) and would only be "
                            f"parked again; the whole body stays on the events dead queue — fix the publisher, then "
                            f"`wanotify dead purge {ids}`")


@dataclass
class ReplayPlan:
    messages: list[SendCommand]
    events: list[tuple[int, str, bytes, str | None]]  # (dead id, routing key, body, event_id)


def take_for_replay(session: Session, f: DeadFilter, limit: int) -> ReplayPlan:
    """Mark the selected dead letters as replayed and return what to publish.

    A message goes back to ``queued`` with a fresh retry budget and is sent again as the same
    log row; an event is published again (with its own event_id) once this is committed, and
    re-rendered by the notifier (its event_id makes that idempotent). Rows already replayed are
    no longer dead, so a second replay of the same ids finds nothing to do. An event parked as too large is
    never replayed: named, it refuses the replay; selected by filters, it stays parked.
    """
    refuse_too_large(session, f)
    plan = ReplayPlan([], [])
    if f.wants_messages:
        replayed = list(session.scalars(_messages_query(f).limit(limit).with_for_update(skip_locked=True)))
        reroute_rows(session, replayed)  # a message of a disabled sender goes out from its recipient's new one
        for m in replayed:
            m.status, m.first_attempt, m.updated_at = Status.QUEUED, m.attempts + 1, func.now()
            plan.messages.append(next_copy(m))
    if f.wants_events:
        replayable = _events_query(session, f).where(DeadEvent.body_truncated.is_(False))  # too large: stay parked
        for e in session.scalars(replayable.limit(limit).with_for_update(skip_locked=True)):
            e.status, e.replayed_at = "replayed", func.now()
            plan.events.append((e.id, e.event_type or "unknown", e.body, e.event_id))
    return plan


def restore_parked(session: Session, dead_ids: list[int]) -> None:
    """Undo ``take_for_replay`` for events that could not be published again."""
    if dead_ids:
        session.execute(update(DeadEvent).where(DeadEvent.id.in_(dead_ids), DeadEvent.status == "replayed")
                        .values(status="parked", replayed_at=None))


def take_for_purge(session: Session, f: DeadFilter, limit: int) -> tuple[set[int], set[int]]:
    """Mark the selected dead letters as purged; returns (message ids, dead event ids)."""
    messages: set[int] = set()
    events: set[int] = set()
    if f.wants_messages:
        messages = {m.id for m in session.scalars(_messages_query(f).limit(limit).with_for_update(skip_locked=True))}
        if messages:
            session.execute(update(MessageLog).where(MessageLog.id.in_(messages)).values(
                status=Status.CANCELLED, updated_at=func.now(),
                last_error=func.concat(PURGED_PREFIX, MessageLog.last_error)))
    if f.wants_events:
        events = {e.id for e in session.scalars(_events_query(session, f).limit(limit).with_for_update(skip_locked=True))}
        if events:
            session.execute(update(DeadEvent).where(DeadEvent.id.in_(events)).values(status="purged"))
    return messages, events
