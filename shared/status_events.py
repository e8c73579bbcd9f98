"""The status event wanotify publishes for every status change of a message (contract section 9).

Published to the topic exchange ``{ns}.status`` with routing key ``message.<status>``. The
model is the one source of the payload: the relay builds its bodies with it and
``wanotify schemas export`` publishes its JSON Schema, so upstream apps read what is sent.
It never carries a phone number.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class PublishedStatus(StrEnum):
    """The statuses an upstream app hears about: every message status but the sender's
    internal ``pending`` (a call in flight)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"


class StatusEvent(BaseModel):
    """One status change of one message. Consumers should ignore fields they do not know:
    later versions may add some."""

    model_config = ConfigDict(frozen=True, title="StatusEvent")

    message_id: Annotated[int, Field(ge=1, description="The message's id in wanotify (GET /api/v1/messages/{id}).")]
    event_id: Annotated[uuid.UUID, Field(description="The upstream event the message came from.")]
    template: Annotated[str, Field(min_length=1, max_length=100, description="The template the message was rendered from.")]
    sender: Annotated[str | None, Field(max_length=32, description="The sender (WhatsApp number) it goes out from, "
                                                                   "once one is chosen.")]
    status: PublishedStatus
    at: Annotated[AwareDatetime, Field(description="When the status changed (RFC 3339).")]
    error: Annotated[str | None, Field(description="Why, for failed, dead and cancelled.")] = None

    @property
    def routing_key(self) -> str:
        return status_routing_key(self.status)

    def body(self) -> dict[str, Any]:
        """The JSON body as published: ``error`` only where one applies."""
        body = self.model_dump(mode="json", exclude_none=True)
        body.setdefault("sender", None)  # always present; null until a sender is chosen
        return body


def status_routing_key(status: PublishedStatus | str) -> str:
    """``message.<status>``, the routing key of a status event on ``{ns}.status``."""
    return f"message.{PublishedStatus(status).value}"
