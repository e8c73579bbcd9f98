"""What travels on the send queue: a pointer to a log row, for one attempt.

The log row in PostgreSQL is the source of truth (recipient, text, status); the queue carries
which row to send and which attempt this copy is for. A copy whose attempt the row has
already used is stale and dropped, which makes duplicate copies (a notifier redelivery, a
double replay, a recovery sweep) harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from wanotify.shared.errors import PermanentError
from wanotify.shared.priority import Priority
from wanotify.shared.topology import DEFAULT_SENDER

ATTEMPT_HEADER = "x-wanotify-attempt"
REASON_HEADER = "x-wanotify-reason"
DETAIL_HEADER = "x-wanotify-detail"
DEAD_ID_HEADER = "x-wanotify-dead-id"


@dataclass(frozen=True)
class SendCommand:
    log_id: int
    attempt: int
    priority: Priority
    event_id: str
    template: str
    # The attempt at which the current retry budget began: 1, or the first call after a replay.
    first_attempt: int = 1
    # The sender (WhatsApp number) whose queues carry this copy (contract section 7).
    sender: str = DEFAULT_SENDER

    @property
    def retries_used(self) -> int:
        return self.attempt - self.first_attempt

    def encode(self) -> bytes:
        fields = {"log_id": self.log_id, "attempt": self.attempt, "priority": self.priority.value,
                  "event_id": self.event_id, "template": self.template, "first_attempt": self.first_attempt,
                  "sender": self.sender}
        return json.dumps(fields, separators=(",", ":")).encode()

    @property
    def message_id(self) -> str:
        return f"{self.log_id}.{self.attempt}"

    def log_fields(self) -> dict[str, object]:
        """What a log line about this copy carries (as JSON fields with LOG_FORMAT=json)."""
        return {"message_id": self.message_id, "log_id": self.log_id, "event_id": self.event_id,
                "template": self.template, "attempt": self.attempt, "sender": self.sender}

    def next_attempt(self) -> SendCommand:
        return replace(self, attempt=self.attempt + 1)

    def on(self, sender: str) -> SendCommand:
        """This copy, routed to another sender's queues."""
        return replace(self, sender=sender)

    @classmethod
    def decode(cls, body: bytes) -> SendCommand:
        try:
            raw: Any = json.loads(body)
            return cls(
                log_id=int(raw["log_id"]),
                attempt=int(raw["attempt"]),
                priority=Priority(raw["priority"]),
                event_id=str(raw["event_id"]),
                template=str(raw["template"]),
                first_attempt=int(raw.get("first_attempt", 1)),
                # Copies queued before senders existed belong to the default sender.
                sender=str(raw.get("sender") or DEFAULT_SENDER),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"not a send command: {exc}", code="bad_command") from None
