"""What the fake provider remembers: the calls it received and the failures it was told to inject.

Shared by every request thread, so all access goes through one condition variable.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from typing import Any

from wanotify.ops.fake_provider.cloud_rules import CloudRules

FAILURE_MODES = ("5xx", "timeout", "429", "permanent", "quality", "pair", "needs_template", "opted_out",
                 "template_params", "template_missing", "text_too_long", "template_policy", "param_format",
                 "template_paused", "template_disabled")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known failure mode, else raise ValueError listing the known ones."""
    if mode not in FAILURE_MODES:
        raise ValueError(f"unknown failure mode {mode!r}; use one of {', '.join(FAILURE_MODES)}")
    return mode


class FakeState:
    """Recorded calls, failure injection (a queue of "next N fail" and a random rate), and the
    Cloud API's rules (``rules``: windows and approved templates, enforced in strict mode)."""

    def __init__(self, strict: bool = False) -> None:
        self.rules = CloudRules(strict)
        self._changed = threading.Condition()
        self._calls: list[dict[str, Any]] = []
        self._seq = 0
        self._queued: deque[list[Any]] = deque()  # [mode, remaining] entries, oldest first
        self._rate = 0.0
        self._rate_mode = "5xx"
        self._rng = random.Random()

    def open_window(self, phone: str) -> None:
        """The user ``phone`` wrote to the business: free-form text may go to them (strict mode)."""
        self.rules.open_window(phone)

    def record(self, call: dict[str, Any]) -> dict[str, Any]:
        """Store one call, numbering it; returns the stored copy (with ``seq``)."""
        with self._changed:
            self._seq += 1
            stored = {"seq": self._seq, **call}
            self._calls.append(stored)
            self._changed.notify_all()
            return dict(stored)

    def calls(self) -> list[dict[str, Any]]:
        """Copies of the recorded calls, oldest first."""
        with self._changed:
            return [dict(call) for call in self._calls]

    def reset(self) -> None:
        """Forget the recorded calls and restart numbering; failure injection is left as is."""
        with self._changed:
            self._calls.clear()
            self._seq = 0
            self._changed.notify_all()

    def fail_next(self, count: int, mode: str) -> None:
        """Make the next ``count`` message requests fail with ``mode`` (after any already queued)."""
        check_mode(mode)
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._changed:
            if count:
                self._queued.append([mode, count])

    def set_failure_rate(self, rate: float, mode: str = "5xx", seed: int | None = None) -> None:
        """Fail each message request with probability ``rate`` (seeded for repeatable runs)."""
        check_mode(mode)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        with self._changed:
            self._rate = rate
            self._rate_mode = mode
            self._rng = random.Random(seed)

    def clear_failures(self) -> None:
        """Stop injecting failures: every message request succeeds again."""
        with self._changed:
            self._queued.clear()
            self._rate = 0.0

    def next_failure(self) -> str | None:
        """The failure mode for the request being handled now, or ``None`` to succeed."""
        with self._changed:
            if self._queued:
                entry = self._queued[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    self._queued.popleft()
                return str(entry[0])
            if self._rate and self._rng.random() < self._rate:
                return self._rate_mode
            return None

    def wait_for_calls(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Block until at least ``count`` calls are recorded; raise TimeoutError if they don't come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._calls) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} calls within {timeout}s, got {len(self._calls)}")
                self._changed.wait(remaining)
            return [dict(call) for call in self._calls]
