"""The event envelope (contract section 1) and a schema per catalogue event type.

``parse_event`` turns raw bytes from the broker into a validated ``Event`` or raises
``InvalidEvent`` with a reason from ``PARK_REASONS`` and a sentence a human can act on.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from wanotify.shared.errors import InvalidEvent
from wanotify.shared.priority import Priority

MAX_EVENT_BYTES = 64 * 1024
# Levels of objects and arrays an event may nest, the event itself being the first: deeper data
# would exhaust Python's recursion (JSON parsing, validation, storing) instead of being refused.
MAX_NESTING = 32
TOO_DEEP = f"nests objects and arrays deeper than {MAX_NESTING} levels"

# Fixed label values for the "events parked" metric and the dead-letter reason header.
PARK_REASONS = (
    "too_large",
    "not_utf8",
    "not_json",
    "not_object",
    "invalid_envelope",
    "unknown_type",
    "invalid_data",
    "invalid_phone",
    "template_missing",
    "template_error",
    "unknown_sender",
    "sender_disabled",
    "internal_error",
)


def _int_to_str(value: Any) -> Any:
    # Upstream apps often send numeric ids and phone numbers (628114040707); they are
    # identifiers, not numbers. A float or a boolean is still refused: it is no one's id.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, Field(min_length=1, max_length=500)]
# The published JSON Schema (shared/schemas.py) says so too: an identifier is a string or an integer.
Identifier = Annotated[str, BeforeValidator(_int_to_str, json_schema_input_type=str | int), Field(min_length=1, max_length=100)]
# A phone number as sent; parsed to E.164 with DEFAULT_REGION after validation (shared/phone.py).
Phone = Annotated[str, BeforeValidator(_int_to_str, json_schema_input_type=str | int), Field(min_length=1, max_length=40)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=4, allow_inf_nan=False)]
Url = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
EventType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)]


class Envelope(BaseModel):
    """What every event carries; unknown extra fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: uuid.UUID
    event_type: EventType
    occurred_at: AwareDatetime
    source: Annotated[str, Field(max_length=100)] | None = None
    data: dict[str, Any]


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class MemberData(_Data):
    member_id: Identifier
    name: Text
    phone: Phone


class AmountData(MemberData):
    amount: Amount


class PaymentLinkData(AmountData):
    payment_url: Url


class WithdrawalData(AmountData):
    withdrawal_id: Identifier


class WithdrawalRejectedData(WithdrawalData):
    reason: Text


class NotificationRequestedData(_Data):
    phone: Phone
    template: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,100}$")]
    variables: dict[str, Any] = Field(default_factory=dict)
    priority: Priority | None = None
    # Pins the message to one sender (a WhatsApp number, contract section 7); None: the recipient's own.
    sender: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")] | None = None
    # The broadcast this message belongs to (broadcasts publish one event per CSV row).
    broadcast_id: Annotated[int, Field(ge=1, strict=True)] | None = None


# The seed system's catalogue. Event types outside it are accepted when a rule names them
# (rules are data) and then only need a phone number.
SCHEMAS: dict[str, type[_Data]] = {
    "member.registered": MemberData,
    "payment.link_created": PaymentLinkData,
    "payment.succeeded": AmountData,
    "member.activated": MemberData,
    "commission.received": AmountData,
    "withdrawal.requested": WithdrawalData,
    "withdrawal.approved": WithdrawalData,
    "withdrawal.rejected": WithdrawalRejectedData,
    "notification.requested": NotificationRequestedData,
}


class PhoneOnlyData(_Data):
    phone: Phone


@dataclass(frozen=True)
class Event:
    """A validated event: the envelope plus its type-checked data."""

    envelope: Envelope
    data: _Data

    @property
    def event_id(self) -> uuid.UUID:
        return self.envelope.event_id

    @property
    def event_type(self) -> str:
        return self.envelope.event_type

    def variables(self) -> dict[str, Any]:
        """The names a template may use: the data fields plus the envelope's metadata."""
        if isinstance(self.data, NotificationRequestedData):
            values = dict(self.data.variables)
        else:
            values = self.data.model_dump()
        values.setdefault("event_id", str(self.event_id))
        values.setdefault("occurred_at", self.envelope.occurred_at)
        return values


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "event"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode_envelope(body: bytes) -> Envelope:
    """Bytes to a validated envelope, or ``InvalidEvent`` saying exactly what is wrong."""
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", f"event is {len(body)} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"event body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidEvent("invalid_data", f"event {TOO_DEEP}") from None  # hundreds of levels: too deep to parse
    except ValueError as exc:
        raise InvalidEvent("not_json", f"event body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidEvent("not_object", f"event must be a JSON object, got {type(raw).__name__}")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent("invalid_envelope", f"envelope: {_describe(exc)}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def nesting(value: Any) -> int:
    """How many levels of objects and arrays ``value`` nests (a scalar: 0), found without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in children)
    return deepest


def check_nesting(envelope: Envelope) -> None:
    """``InvalidEvent`` when the event nests deeper than ``MAX_NESTING`` (its data does: the other
    envelope fields are scalars, and unknown ones are dropped)."""
    if 1 + nesting(envelope.data) > MAX_NESTING:
        raise InvalidEvent("invalid_data", f"{envelope.event_type} data {TOO_DEEP}")


def validate_data(envelope: Envelope) -> Event:
    """Check the data against its type's schema (catalogue types) or the minimal one."""
    check_nesting(envelope)
    schema = SCHEMAS.get(envelope.event_type, PhoneOnlyData)
    try:
        data = schema.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEvent("invalid_data", f"{envelope.event_type} data: {_describe(exc)}") from None
    return Event(envelope, data)


def build_envelope(event_type: str, data: dict[str, Any], *, source: str | None = None,
                   event_id: uuid.UUID | str | None = None, occurred_at: datetime | None = None) -> dict[str, Any]:
    """An envelope as an upstream publisher sends it, with event_id and occurred_at filled in."""
    envelope = Envelope(
        event_id=uuid.UUID(str(event_id)) if event_id else uuid.uuid4(),
        event_type=event_type,
        occurred_at=occurred_at or datetime.now(UTC),
        source=source,
        data=data,
    )
    return envelope.model_dump(mode="json", exclude_none=True)
