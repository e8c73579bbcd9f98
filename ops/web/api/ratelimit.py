"""A token bucket per API key, in this process's memory.

Each key may spend ``rate`` tokens a second on average and ``burst`` at once: an event
costs one token (a batch costs one per event, at most the whole burst), a read costs one.
A request that finds too few tokens spends none and is told how long until there are
enough (429 with Retry-After). Several web processes behind one balancer each allow as much.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, cost: int, now: float) -> float:
        """0 when ``cost`` tokens were taken; else the seconds until they would be there (nothing taken)."""
        cost = min(cost, self.burst)  # a request larger than the burst waits for a full bucket, not forever
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """One bucket per key id; buckets of keys gone quiet are forgotten when there are many."""

    MAX_BUCKETS = 10_000

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[int, TokenBucket] = {}

    def take(self, key_id: int, cost: int = 1) -> float:
        now = self.clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            if len(self._buckets) >= self.MAX_BUCKETS:
                self._buckets.clear()  # only keys that exist get here, so this is rare: they start full again
            bucket = self._buckets[key_id] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(cost, now)
