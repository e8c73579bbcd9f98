"""One ``status_outbox`` row as the status event upstream apps receive (contract section 9)."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from wanotify.consumers.status.store import OutboxRow


def routing_key(row: OutboxRow) -> str:
    return f"message.{row.status}"


def amqp_message_id(row: OutboxRow) -> str:
    """Unique per outbox row: the same change published twice (at least once) keeps it."""
    return f"status-{row.id}"


def status_body(row: OutboxRow) -> dict[str, Any]:
    """The event: which message, of which event, and what became of it. Never a phone number."""
    body: dict[str, Any] = {
        "message_id": row.log_id,
        "event_id": row.event_id,
        "template": row.template,
        "sender": row.sender,  # None until a sender is chosen for the message
        "status": row.status,
        "at": row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if row.error is not None:
        body["error"] = row.error
    return body


def encode(row: OutboxRow) -> bytes:
    return json.dumps(status_body(row), separators=(",", ":"), ensure_ascii=False).encode()
