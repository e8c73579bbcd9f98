"""One ``status_outbox`` row as the status event upstream apps receive (contract section 9).

The body comes from ``StatusEvent``, the model whose JSON Schema is published, so what is sent
and what is documented cannot drift apart."""

from __future__ import annotations

import json

from wanotify.consumers.status.store import OutboxRow
from wanotify.shared.phone import mask_phones_in_text
from wanotify.shared.status_events import StatusEvent, status_routing_key


def routing_key(row: OutboxRow) -> str:
    return status_routing_key(row.status)


def amqp_message_id(row: OutboxRow) -> str:
    """Unique per outbox row: the same change published twice (at least once) keeps it."""
    return f"status-{row.id}"


def status_event(row: OutboxRow) -> StatusEvent:
    """Which message, of which event, and what became of it. Never a phone number: a provider's
    error text may quote the recipient's ("Recipient +62… is not a valid WhatsApp user"), so the
    error is masked as the API and the console mask it."""
    error = None if row.error is None else mask_phones_in_text(row.error)
    return StatusEvent.model_validate({"message_id": row.log_id, "event_id": row.event_id, "template": row.template,
                                       "sender": row.sender, "status": row.status, "at": row.at, "error": error})


def encode(row: OutboxRow) -> bytes:
    return json.dumps(status_event(row).body(), separators=(",", ":"), ensure_ascii=False).encode()
