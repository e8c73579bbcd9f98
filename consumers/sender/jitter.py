"""A high percentile of recent delays, as a margin that follows the machine.

The lane uses it for how long preparing a call takes (the claim and two thread hand-offs: see
``Lane._lead``), so it claims that far ahead of the slot: a quiet machine does not pay a fixed
lead that a loaded one would need. Until enough samples have been seen the estimate is
``default`` (a safe constant); it is always kept between ``floor`` and ``ceiling``.
"""

from __future__ import annotations

import bisect
from collections import deque


class JitterEstimate:
    def __init__(self, default: float, *, window: int = 2000, min_samples: int = 20, quantile: float = 0.999,
                 floor: float = 0.0001, ceiling: float = 0.003) -> None:
        self.default = default
        self._order: deque[float] = deque()  # samples, oldest first
        self._sorted: list[float] = []  # the same samples, ascending
        self._window = window
        self._min_samples = min_samples
        self._quantile = quantile
        self._floor = floor
        self._ceiling = ceiling

    def add(self, delay: float) -> None:
        """One sample (seconds, >= 0)."""
        delay = max(0.0, delay)
        self._order.append(delay)
        bisect.insort(self._sorted, delay)
        if len(self._order) > self._window:
            del self._sorted[bisect.bisect_left(self._sorted, self._order.popleft())]

    def percentile(self) -> float | None:
        """The ``quantile`` of the samples (nearest rank, rounded up); None before ``min_samples``."""
        n = len(self._sorted)
        if n < self._min_samples:
            return None
        return self._sorted[min(n - 1, int(self._quantile * n))]

    def margin(self) -> float:
        estimate = self.percentile()
        if estimate is None:
            return self.default
        return min(self._ceiling, max(self._floor, estimate))
