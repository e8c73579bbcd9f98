"""From a request body to events ready to publish, or every reason why not, field by field.

The checks are the notifier's own: ``Envelope`` for the envelope, ``SCHEMAS`` (or the
phone-only schema for a type a rule names outside the catalogue) for ``data``, and the
phone number parsed with ``DEFAULT_REGION`` as the notifier parses it. So an event the API
accepts is one the notifier will not park for its shape; what the API cannot know ahead
(a template that fails to render with these values) is still parked there, as in section 1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from wanotify.ops.web.api.errors import ApiError
from wanotify.producers.envelope import OutgoingEvent
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.events import MAX_EVENT_BYTES, SCHEMAS, TOO_DEEP, Envelope, PhoneOnlyData, check_nesting
from wanotify.shared.phone import normalize_phone


@dataclass(frozen=True)
class Checks:
    """What every event is checked against: the event types some rule names, the phone region, now."""

    known_types: Collection[str]
    region: str
    now: datetime


@dataclass
class Checked:
    event: OutgoingEvent | None
    errors: list[dict[str, str]]


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a 400 saying why it is not."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "not_json", f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ApiError(400, "not_json", f"the body {TOO_DEEP}") from None  # hundreds of levels: too deep to parse
    except ValueError as exc:
        raise ApiError(400, "not_json", f"the body is not JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_event(raw: Any, checks: Checks, path: str = "") -> Checked:
    """One event checked; ``path`` prefixes the error paths (``events.3``) in a batch."""
    if not isinstance(raw, dict):
        return Checked(None, [_error(path, f"an event must be a JSON object, got {type(raw).__name__}")])
    try:
        envelope = Envelope.model_validate(_filled(raw, checks.now))
    except ValidationError as exc:
        return Checked(None, _errors(exc, path))
    errors = _check_data(envelope, checks, path) or _lone_surrogates(raw, path)
    if errors:
        return Checked(None, errors)
    body = json.dumps(envelope.model_dump(mode="json", exclude_none=True), separators=(",", ":"),
                      ensure_ascii=False).encode()
    if len(body) > MAX_EVENT_BYTES:
        return Checked(None, [_error(path, f"the event is {len(body)} bytes; the limit is {MAX_EVENT_BYTES}")])
    return Checked(OutgoingEvent(str(envelope.event_id), envelope.event_type, body), [])


def _filled(raw: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``event_id`` and ``occurred_at`` filled in when absent (or null): a new UUID, the time of receipt."""
    filled = dict(raw)
    if filled.get("event_id") is None:
        filled["event_id"] = str(uuid.uuid4())
    if filled.get("occurred_at") is None:
        filled["occurred_at"] = now.isoformat()
    return filled


def _check_data(envelope: Envelope, checks: Checks, path: str) -> list[dict[str, str]]:
    if envelope.event_type not in checks.known_types:
        return [_error(_join(path, "event_type"), f"unknown event type {envelope.event_type!r}: no notification rule "
                                                  "names it (see the event catalogue in the docs)")]
    try:
        check_nesting(envelope)
    except InvalidEvent as exc:
        return [_error(_join(path, "data"), exc.detail)]
    schema: type[BaseModel] = SCHEMAS.get(envelope.event_type, PhoneOnlyData)
    try:
        data = schema.model_validate(envelope.data)
    except ValidationError as exc:
        return _errors(exc, _join(path, "data"))
    try:
        normalize_phone(data.phone, checks.region)  # type: ignore[attr-defined]
    except InvalidEvent as exc:
        return [_error(_join(path, "data.phone"), exc.detail)]
    return []


def _lone_surrogates(raw: Any, path: str) -> list[dict[str, str]]:
    """The first text holding half of a UTF-16 pair (JSON's ``"\\ud800"`` alone): JSON lets it be
    written, but it is no character, and neither UTF-8 nor PostgreSQL can hold it. Walked
    without recursion: the body's nesting is bounded only by the JSON parser."""
    stack: list[tuple[str, Any]] = [(path, raw)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((_join(where, str(k)), v) for k, v in reversed(value.items()))
            stack.extend((where, k) for k in value if isinstance(k, str))  # a key is text too
        elif isinstance(value, list):
            stack.extend((_join(where, str(i)), v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
            return [_error(where, "holds a lone UTF-16 surrogate (a \\uD800–\\uDFFF escape without its pair), "
                                  "which is not a character: send the text as valid Unicode")]
    return []


def _errors(exc: ValidationError, path: str) -> list[dict[str, str]]:
    return [_error(_join(path, ".".join(str(p) for p in item["loc"])), item["msg"]) for item in exc.errors()]


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _error(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}
