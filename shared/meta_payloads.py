"""What a Cloud API webhook payload says besides delivery receipts, read into plain values.

Meta sends ``{"entry": [{"id", "time", "changes": [{"field", "value"}]}]}``. The fields read
here: ``messages`` (the user's own messages, ``value.messages[]``; its ``statuses[]`` are
receipts, see shared/receipts.py), ``message_template_status_update``,
``message_template_quality_update``, ``template_category_update``,
``phone_number_quality_update``, ``account_alerts`` and ``business_capability_update``.
Anything malformed is skipped, never an error: a valid payload must still get its 200.

Nothing of a message's content is kept, except the text itself for the one decision that
needs it (an opt-out keyword), and that only in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

TEMPLATE_FIELDS = ("message_template_status_update", "message_template_quality_update", "template_category_update")
ACCOUNT_FIELDS = ("phone_number_quality_update", "account_alerts", "business_capability_update")
# Not written by the user: a "system" message says e.g. that they changed their number.
NOT_FROM_THE_USER = frozenset({"system"})


@dataclass(frozen=True)
class Inbound:
    """A message the user sent us: it opens their customer-service window."""

    message_id: str
    phone: str  # E.164
    at: datetime
    text: str | None = None  # a text message's body, only to look for an opt-out keyword


@dataclass(frozen=True)
class TemplateUpdate:
    """A change to one template (name + language) as Meta reported it; None: not part of this update."""

    key: str
    name: str
    language: str
    at: datetime | None  # the entry's time; None when the payload gave none
    meta_id: str | None = None
    status: str | None = None
    reason: str | None = None
    category: str | None = None
    quality: str | None = None


@dataclass(frozen=True)
class AccountUpdate:
    """Something about the account or a sending number: kept as an event; a number's state updated."""

    key: str
    field: str
    event: str | None
    at: datetime | None
    detail: dict[str, Any]
    phone_number: str | None = None  # our own display number (phone_number_quality_update only)
    quality: str | None = None
    messaging_limit: str | None = None
    limit_lowered: bool | None = None  # True: DOWNGRADE; False: raised; None: not a limit change


@dataclass
class MetaChanges:
    inbound: list[Inbound] = field(default_factory=list)
    templates: list[TemplateUpdate] = field(default_factory=list)
    account: list[AccountUpdate] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.inbound or self.templates or self.account)


def parse_changes(payload: Any, payload_ref: str) -> MetaChanges:
    """Everything but receipts in a webhook payload.

    An update is identified by its content and the entry's time, so the same update sent
    twice is recognised; without a time, by ``payload_ref`` (the stored payload) and its
    position, so a retry of the same body is recognised but two equal updates in different
    payloads are both applied, in arrival order.
    """
    changes = MetaChanges()
    for position, (entry_time, name, value) in enumerate(_changes(payload)):
        ref = f"{payload_ref}:{position}"
        if name == "messages":
            changes.inbound.extend(_inbound(value))
        elif name in TEMPLATE_FIELDS:
            changes.templates.extend(_template(name, value, entry_time, ref))
        elif name in ACCOUNT_FIELDS:
            changes.account.append(_account(name, value, entry_time, ref))
    return changes


def _changes(payload: Any) -> Iterator[tuple[datetime | None, str, dict[str, Any]]]:
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        at = unix_time(entry.get("time"))
        changes = entry.get("changes")
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict) and isinstance(change.get("field"), str) and isinstance(change.get("value"), dict):
                yield at, change["field"], change["value"]


def _inbound(value: dict[str, Any]) -> Iterator[Inbound]:
    items = value.get("messages")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("type") in NOT_FROM_THE_USER:
            continue
        message_id, phone, at = _short(item.get("id"), 200), wa_id_to_e164(item.get("from")), unix_time(item.get("timestamp"))
        if message_id and phone and at:
            yield Inbound(message_id, phone, at, _text_body(item))


def _text_body(item: dict[str, Any]) -> str | None:
    text = item.get("text")
    body = text.get("body") if item.get("type") == "text" and isinstance(text, dict) else None
    return body if isinstance(body, str) else None


def _template(name: str, value: dict[str, Any], at: datetime | None, ref: str) -> Iterator[TemplateUpdate]:
    template, language = _short(value.get("message_template_name"), 512), _short(value.get("message_template_language"), 15)
    if not template or not language:
        return
    meta_id = value.get("message_template_id")
    base = TemplateUpdate(_key(name, value, at, ref), template, language, at,
                          str(meta_id)[:64] if isinstance(meta_id, str | int) and not isinstance(meta_id, bool) else None)
    if name == "message_template_status_update" and _short(value.get("event"), 20):
        yield replace(base, status=str(value["event"]).upper(), reason=_reason(value.get("reason")),
                      category=_short(value.get("message_template_category"), 20))
    elif name == "message_template_quality_update" and _short(value.get("new_quality_score"), 20):
        yield replace(base, quality=str(value["new_quality_score"]).upper())
    elif name == "template_category_update" and _short(value.get("new_category"), 20):
        yield replace(base, category=str(value["new_category"]).upper())


def _reason(raw: Any) -> str | None:
    # Meta sends the string "NONE" when there is no reason (on approval).
    text = _short(raw, 2000)
    return None if text is None or text.upper() == "NONE" else text


def _account(name: str, value: dict[str, Any], at: datetime | None, ref: str) -> AccountUpdate:
    key = _key(name, value, at, ref)
    if name == "phone_number_quality_update":
        return _number_update(key, value, at)
    alert = value.get("alert_info")
    event = _short(alert.get("alert_type"), 60) if isinstance(alert, dict) else _short(value.get("event"), 60)
    return AccountUpdate(key, name, event, at, value)


def _number_update(key: str, value: dict[str, Any], at: datetime | None) -> AccountUpdate:
    event = (_short(value.get("event"), 60) or "").upper() or None
    limit = _short(value.get("max_daily_conversations_per_business"), 40) or _short(value.get("current_limit"), 40)
    explicit = _short(value.get("quality_rating"), 20) or _short(value.get("current_quality"), 20)
    quality = explicit.upper() if explicit else {"FLAGGED": "FLAGGED", "UNFLAGGED": "UNFLAGGED"}.get(event or "")
    lowered = True if event == "DOWNGRADE" else False if event in ("UPGRADE", "ONBOARDING") else None
    number = "".join(ch for ch in str(value.get("display_phone_number") or "") if ch.isdigit())[:40] or None
    return AccountUpdate(key, "phone_number_quality_update", event, at, value, phone_number=number, quality=quality,
                         messaging_limit=limit, limit_lowered=lowered)


def _key(name: str, value: dict[str, Any], at: datetime | None, ref: str) -> str:
    if at is None:
        return f"{name}:payload:{ref}"[:200]
    digest = hashlib.sha256(json.dumps([name, value, at.timestamp()], sort_keys=True, default=str).encode()).hexdigest()
    return f"{name}:{digest}"


def wa_id_to_e164(raw: Any) -> str | None:
    """A WhatsApp id (the number's digits with its country code) as E.164, or None."""
    digits = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    return f"+{digits}" if digits.isdigit() and 7 <= len(digits) <= 15 else None


def unix_time(raw: Any) -> datetime | None:
    """Meta's Unix seconds (a number or a digit string) as a time, or None if unusable."""
    if isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _short(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None
