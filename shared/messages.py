"""What travels on the send queue: a pointer to a log row, for one attempt.

The log row in PostgreSQL is the source of truth (recipient, text, status); the queue carries
which row to send and which attempt this copy is for. A copy whose attempt the row has
already used is stale and dropped, which makes duplicate copies (a notifier redelivery, a
double replay, a recovery sweep) harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wanotify.shared.errors import PermanentError
from wanotify.shared.priority import Priority

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

    @property
    def retries_used(self) -> int:
        return self.attempt - self.first_attempt

    def encode(self) -> bytes:
        fields = {"log_id": self.log_id, "attempt": self.attempt, "priority": self.priority.value,
                  "event_id": self.event_id, "template": self.template, "first_attempt": self.first_attempt}
        return json.dumps(fields, separators=(",", ":")).encode()

    @property
    def message_id(self) -> str:
        return f"{self.log_id}.{self.attempt}"

    def log_fields(self) -> dict[str, object]:
        """What a log line about this copy carries (as JSON fields with LOG_FORMAT=json)."""
        return {"message_id": self.message_id, "log_id": self.log_id, "event_id": self.event_id,
                "template": self.template, "attempt": self.attempt}

    def next_attempt(self) -> SendCommand:
        return SendCommand(self.log_id, self.attempt + 1, self.priority, self.event_id, self.template, self.first_attempt)

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
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"not a send command: {exc}", code="bad_command") from None
