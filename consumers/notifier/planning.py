"""Deciding what an event becomes: messages to log and send, or a reason to park it.

Pure functions over bytes and a ``Catalog`` (rules and templates loaded from the database),
so every rule about bad input is testable without a broker.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from wanotify.consumers.notifier.routing import SenderNames
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.events import (
    MAX_EVENT_BYTES,
    Envelope,
    Event,
    NotificationRequestedData,
    decode_envelope,
    validate_data,
)
from wanotify.shared.meta_templates import stored_variables
from wanotify.shared.phone import normalize_phone
from wanotify.shared.priority import Priority
from wanotify.shared.templates import render


@dataclass(frozen=True)
class RuleSpec:
    template: str | None  # None: the event names its template (notification.requested)
    priority: Priority
    sender: str | None = None  # pinned by the rule (honoured while that sender is active)


@dataclass(frozen=True)
class Catalog:
    rules: dict[str, list[RuleSpec]]
    templates: dict[str, str]  # active templates: key -> body
    senders: SenderNames = field(default_factory=SenderNames)  # what a message may be routed to

    def metric_label(self, event_type: str | None) -> str:
        """An event type as a metric label: only types the rules know, so labels stay few."""
        return event_type if event_type in self.rules else "unknown"


@dataclass(frozen=True)
class PlannedMessage:
    event_id: str
    event_type: str
    template: str
    recipient: str
    body: str
    priority: Priority
    # The event's variables (JSON, without the phone): an approved template's parameters are
    # filled from them when the message is sent.
    variables: dict[str, Any] = field(default_factory=dict)
    # A pinned sender (the event's data.sender, or the rule's); None: the recipient's own (routing.py).
    sender: str | None = None
    broadcast_id: int | None = None


@dataclass(frozen=True)
class ParkedEvent:
    reason: str
    detail: str
    event_id: str | None
    event_type: str | None


@dataclass
class EventPlan:
    body: bytes
    messages: list[PlannedMessage] = field(default_factory=list)
    parked: ParkedEvent | None = None


def plan_event(body: bytes, catalog: Catalog, region: str) -> EventPlan:
    """Every message the event yields, and the reason to park it if any part cannot be made."""
    plan = EventPlan(body)
    envelope: Envelope | None = None
    try:
        envelope = decode_envelope(body)
        rules = catalog.rules.get(envelope.event_type)
        if not rules:
            raise InvalidEvent("unknown_type", f"no notification rule for event type {envelope.event_type!r}")
        event = validate_data(envelope)
        recipient = normalize_phone(event.data.phone, region)  # type: ignore[attr-defined]
        problems = []
        for rule in rules:
            try:
                plan.messages.append(_render(event, rule, recipient, catalog))
            except InvalidEvent as exc:
                problems.append(exc)
        if problems:
            first = problems[0]
            raise InvalidEvent(first.reason, "; ".join(p.detail for p in problems))
    except InvalidEvent as exc:
        event_id, event_type = (str(envelope.event_id), envelope.event_type) if envelope else _named_by(body, exc)
        plan.parked = ParkedEvent(reason=exc.reason, detail=exc.detail, event_id=event_id, event_type=event_type)
    return plan


_EVENT_ID = TypeAdapter(uuid.UUID)  # the envelope's own rule for an event_id


def _named_by(body: bytes, refused: InvalidEvent) -> tuple[str | None, str | None]:
    """The event_id and event_type of an event whose envelope was refused (a JSON object with,
    say, an occurred_at without a time zone), where they are valid on their own: `dead show`
    then names the event, and its copy on the dead queue keeps the event's id as message_id."""
    if refused.reason != "invalid_envelope":
        return None, None  # not a JSON object: nothing to take an id from
    raw = json.loads(body)  # parsed once already, so it parses
    event_id, event_type = raw.get("event_id"), raw.get("event_type")
    try:
        checked_id: str | None = str(_EVENT_ID.validate_python(event_id)) if isinstance(event_id, str) else None
    except ValidationError:
        checked_id = None
    return checked_id, _as_event_type(event_type) if isinstance(event_type, str) else None


def internal_error(body: bytes, error: Exception) -> EventPlan:
    """A plan that parks the event because processing it failed unexpectedly (a bug, or data
    the database refuses): the event is kept with the error, for a fix and a replay."""
    try:
        envelope: Envelope | None = decode_envelope(body)
    except InvalidEvent:
        envelope = None
    detail = f"processing failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return EventPlan(body, parked=ParkedEvent(
        "internal_error", detail[:1000], str(envelope.event_id) if envelope else None,
        envelope.event_type if envelope else None))


def oversized(body: bytes, message_id: str | None, routing_key: str | None) -> EventPlan:
    """A plan that parks an event over ``MAX_EVENT_BYTES`` without reading it: its id and type
    are taken from what the broker carries (``message_id`` and the routing key), if they look
    like an event id and an event type."""
    detail = f"event is {len(body)} bytes; the limit is {MAX_EVENT_BYTES}"
    return EventPlan(body, parked=ParkedEvent("too_large", detail, _as_uuid(message_id), _as_event_type(routing_key)))


_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def _as_uuid(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value and len(value) <= 64 else None
    except ValueError:
        return None


def _as_event_type(value: str | None) -> str | None:
    return value if value and len(value) <= 100 and _EVENT_TYPE.fullmatch(value) else None


def _render(event: Event, rule: RuleSpec, recipient: str, catalog: Catalog) -> PlannedMessage:
    data = event.data
    template = rule.template
    priority = rule.priority
    sender, broadcast_id = rule.sender, None
    catalog.senders.check_any_active()
    if isinstance(data, NotificationRequestedData):
        template = template or data.template
        priority = data.priority or priority
        if data.sender is not None:
            catalog.senders.check_pin(data.sender)
            sender = data.sender
        broadcast_id = data.broadcast_id
    if template is None:
        raise InvalidEvent("template_missing", f"the rule for {event.event_type} names no template")
    body = catalog.templates.get(template)
    if body is None:
        raise InvalidEvent("template_missing", f"template {template!r} does not exist or is not active")
    variables = event.variables()
    text = render(body, variables)
    return PlannedMessage(str(event.event_id), event.event_type, template, recipient, text, priority,
                          stored_variables(variables), sender, broadcast_id)
