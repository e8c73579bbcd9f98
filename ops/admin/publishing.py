"""Publishing an event by hand: ``publish``, ``send-test`` and the console's urgent send.

An event published by hand is checked first exactly as the notifier will check it (the same
envelope and data schemas, the rules and templates in the database, the phone number, a
render of every template it yields), so a mistake is refused at once with the reason the
notifier would have parked it for, instead of being accepted and parked later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.consumers.notifier.planning import PlannedMessage, plan_event
from wanotify.consumers.notifier.store import load_catalog, park_unknown_broadcasts
from wanotify.ops.admin.audit import record
from wanotify.ops.admin.errors import ActionRefused
from wanotify.producers.envelope import prepare
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.models import Template, TemplateChange
from wanotify.shared.phone import mask_phone
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

TEST_TEMPLATE = "test_message"
# An urgent text composed by an operator travels as this template's one variable, ``text``,
# so it takes the notification.requested path like every other message.
TEXT_TEMPLATE = "operator_message"
TEXT_TEMPLATE_BODY = "{{ text }}"


@dataclass(frozen=True)
class Published:
    event_id: str
    messages: list[PlannedMessage]  # what the notifier will make of it

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "messages": [
            {"template": m.template, "priority": m.priority.value, "recipient": mask_phone(m.recipient)}
            for m in self.messages]}


def _envelope_refused(exc: ValidationError | ValueError) -> ActionRefused:
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors())
        return ActionRefused(f"invalid event: {problems}")
    return ActionRefused(f"invalid event: {exc}")  # an event_id that is not a UUID


def check_event(session: Session, settings: Settings, event_type: str, data: dict[str, Any],
                event_id: str | None = None, source: str | None = None) -> tuple[bytes, list[PlannedMessage]]:
    """The event's body and the messages it yields; ``ActionRefused`` with the notifier's reason
    if it would be parked."""
    try:
        body = prepare(event_type, data, source=source, event_id=event_id).body
    except (ValidationError, ValueError) as exc:
        raise _envelope_refused(exc) from None
    plan = plan_event(body, load_catalog(session), settings.default_region)
    park_unknown_broadcasts(session, [plan])  # a read: what the notifier checks as it writes the log
    if plan.parked is not None:
        raise ActionRefused(f"the notifier would park this event ({plan.parked.reason}): {plan.parked.detail}")
    return body, plan.messages


def publish_checked(session: Session, settings: Settings, event_type: str, data: dict[str, Any], *,
                    event_id: str | None = None, source: str = "cli") -> Published:
    """Check the event (``check_event``), then publish it (persistent, confirmed)."""
    body, messages = check_event(session, settings, event_type, data, event_id, source)
    checked_id = json.loads(body)["event_id"]
    # One try: the connection is new, so retrying it only delays the answer.
    with EventPublisher(settings.amqp_url, settings.namespace, source=source, reconnect_attempts=0,
                        topology=Topology.of(settings)) as publisher:
        return Published(publisher.publish(event_type, data, event_id=checked_id), messages)


def publish_unchecked(settings: Settings, event_type: str, data: dict[str, Any], *, event_id: str | None = None,
                      source: str = "cli") -> str:
    """Publish without the notifier's checks (only the envelope's): to see how a bad event is parked."""
    try:
        with EventPublisher(settings.amqp_url, settings.namespace, source=source, reconnect_attempts=0,
                            topology=Topology.of(settings)) as publisher:
            return publisher.publish(event_type, data, event_id=event_id)
    except (ValidationError, ValueError) as exc:
        raise _envelope_refused(exc) from None


def urgent_data(phone: str, *, text: str | None = None, template: str | None = None,
                variables: dict[str, Any] | None = None, sender: str | None = None) -> dict[str, Any]:
    """A ``notification.requested`` event's data at top priority: a composed ``text``, a
    ``template`` with ``variables``, or (neither) the test message; from ``sender`` if given
    (to try a number), else from the recipient's own."""
    if text is not None and template is not None:
        raise ActionRefused("give a text or a template, not both")
    if text is not None:
        if not text.strip():
            raise ActionRefused("the text is empty — write the message to send")
        template, variables = TEXT_TEMPLATE, {"text": text}
    elif template is None:
        template = TEST_TEMPLATE
        variables = {"sent_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")} | (variables or {})
    pinned = {"sender": sender} if sender else {}
    return {"phone": phone, "template": template, "variables": variables or {}, "priority": Priority.HIGH.value} | pinned


def send_urgent(session: Session, settings: Settings, actor: str, phone: str, *, text: str | None = None,
                template: str | None = None, variables: dict[str, Any] | None = None,
                action: str = "send.urgent", sender: str | None = None) -> Published:
    """Queue one message to ``phone`` at top priority (it goes next, still a gap after the last
    call), through the same path as every ``notification.requested`` event; audited."""
    data = urgent_data(phone, text=text, template=template, variables=variables, sender=sender)
    if data["template"] == TEXT_TEMPLATE:
        _ensure_text_template(session, actor, settings.default_language)
    published = publish_checked(session, settings, "notification.requested", data, source=action)
    [message] = published.messages
    record(session, actor, action, count=1, target={
        "recipient": mask_phone(message.recipient), "template": message.template, "event_id": published.event_id}
        | ({"sender": sender} if sender else {}))
    return published


def _ensure_text_template(session: Session, actor: str, language: str) -> None:
    """Create the composed-text template the first time it is needed (recorded in its history).

    In a transaction of its own, committed before the event is published: the notifier reads
    the templates when the event arrives, which may be before the caller's transaction ends."""
    with Session(session.get_bind()) as own, own.begin():
        added = own.execute(insert(Template).values(key=TEXT_TEMPLATE, body=TEXT_TEMPLATE_BODY, language=language)
                            .on_conflict_do_nothing().returning(Template.key)).first()
        if added is not None:
            own.add(TemplateChange(template_key=TEXT_TEMPLATE, actor=actor, before=None,
                                   after={"body": TEXT_TEMPLATE_BODY, "language": language, "active": True}))
