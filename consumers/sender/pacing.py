"""Start-to-start spacing of this process's own calls, on the monotonic clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_start: float | None = None

    def remaining(self, gap: float) -> float:
        """Seconds until this process may start its next call."""
        if self._last_start is None:
            return 0.0
        return max(0.0, self._last_start + gap - self._clock())

    def mark_start(self) -> float | None:
        """Record that a call starts now; returns the time since the previous start."""
        now = self._clock()
        previous, self._last_start = self._last_start, now
        return None if previous is None else now - previous
