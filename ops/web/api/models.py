"""The API's request and response bodies as pydantic models: they check requests, shape
answers and are the OpenAPI document's schemas (``openapi``), so the three cannot disagree.

``EventIn`` is the notifier's own ``Envelope`` (contract section 1) with ``event_id`` and
``occurred_at`` optional: the API fills them in (a new UUID; the time of receipt) and then
validates the whole envelope with ``Envelope`` itself, and its data with the event type's
schema from ``wanotify.shared.events.SCHEMAS``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from wanotify.shared.events import Envelope

MAX_BATCH = 500


class EventIn(Envelope):
    """One event as an upstream app posts it."""

    event_id: uuid.UUID | None = Field(  # type: ignore[assignment]
        None, description="The idempotency key. Absent: a new UUID is made and returned. Posting the same id "
                          "again yields no second message.")
    occurred_at: AwareDatetime | None = Field(  # type: ignore[assignment]
        None, description="RFC 3339 with a time zone. Absent: the time the API received the event.")
    data: dict[str, Any] = Field(description="The event type's fields; the schema per type is in the docs "
                                             "(`member.registered` needs member_id, name, phone, ...).")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH,
                                         description=f"1 to {MAX_BATCH} events, each an `EventIn`.")


class Accepted(BaseModel):
    event_id: uuid.UUID = Field(description="Confirmed by the broker: the event will become its messages.")


class BatchItem(BaseModel):
    index: int = Field(description="The event's position in the request, from 0.")
    event_id: uuid.UUID
    status: Literal["accepted", "failed"] = Field(
        description="accepted: confirmed by the broker. failed: not confirmed (post it again; its id makes that safe).")


class BatchAccepted(BaseModel):
    events: list[BatchItem]


class FieldError(BaseModel):
    path: str = Field(description="Where in the body, dotted: `data.phone`, `events.3.event_type`; empty for the body.")
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="A stable code: unauthorized, rate_limited, invalid_event, not_json, too_large, "
                                   "broker_unavailable, database_unavailable, not_found, ...")
    message: str = Field(description="What went wrong and what to do, for a person.")
    errors: list[FieldError] | None = Field(None, description="Each invalid field (422).")
    events: list[BatchItem] | None = Field(None, description="Per event, when a batch was published in part (503).")


class Receipt(BaseModel):
    status: str = Field(description="What WhatsApp reported: sent, delivered, read, failed.")
    at: datetime | None = Field(description="When WhatsApp says it happened.")
    received_at: datetime | None = Field(description="When wanotify received the receipt.")
    error: str | None = None


class Call(BaseModel):
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None = Field(description="sent, retry, permanent, ... (the provider's answer, classified).")
    error: str | None = None


class MessageStatus(BaseModel):
    """One message: what an event became for one template. Phone numbers appear masked only."""

    id: int
    event_id: uuid.UUID
    event_type: str
    template: str
    sender: str | None = Field(description="The WhatsApp number (sender name) it goes or went out from.")
    priority: str
    status: Literal["queued", "pending", "sent", "delivered", "read", "failed", "dead", "cancelled"] | str
    attempts: int = Field(description="Provider calls made so far.")
    recipient: str = Field(description="Masked, e.g. 6281******07.")
    created_at: datetime
    queued_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None = Field(description="From the first delivery receipt, if any.")
    read_at: datetime | None = Field(description="From the first read receipt, if any.")
    updated_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a scheduled retry is due.")
    last_error: str | None
    error_code: str | None
    receipts: list[Receipt]
    calls: list[Call]


class Parked(BaseModel):
    """Why the notifier parked the event instead of making messages of it."""

    reason: str = Field(description="invalid_data, invalid_phone, template_missing, template_error, unknown_sender, ...")
    detail: str = Field(description="What to fix, in words; phone numbers masked.")
    parked_at: datetime


class MessageList(BaseModel):
    messages: list[MessageStatus]
    parked: Parked | None = Field(None, description="Present when the notifier parked the event: it became no "
                                                    "message, and an admin may replay it once the cause is fixed.")
