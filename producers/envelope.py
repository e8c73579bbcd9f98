"""Turning (event type, data) into the bytes and AMQP properties of contract section 1."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wanotify.shared.events import build_envelope


@dataclass(frozen=True)
class OutgoingEvent:
    event_id: str
    event_type: str
    body: bytes


def prepare(event_type: str, data: dict[str, Any], *, source: str | None = None,
            event_id: str | None = None) -> OutgoingEvent:
    """Validate the envelope (event_id and occurred_at filled in) and serialize it."""
    envelope = build_envelope(event_type, data, source=source, event_id=event_id)
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    return OutgoingEvent(envelope["event_id"], envelope["event_type"], body)
