"""An in-process provider that accepts everything: for demos, tests and benchmarks without HTTP."""

from __future__ import annotations

import threading
import uuid

from wanotify.consumers.providers.base import OutgoingMessage, SendResult
from wanotify.shared.config import WhatsAppSettings


class FakeProvider:
    """Always succeeds with id ``fake-<uuid>``; keeps only a count, never the messages."""

    name = "fake"

    def __init__(self, settings: WhatsAppSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._sent = 0

    @property
    def sent_count(self) -> int:
        """How many messages this instance has "sent"."""
        return self._sent

    def send(self, message: OutgoingMessage) -> SendResult:
        """Pretend to send ``message``."""
        with self._lock:
            self._sent += 1
        return SendResult(provider_message_id=f"fake-{uuid.uuid4()}")

    def close(self) -> None:
        """Nothing to release."""
