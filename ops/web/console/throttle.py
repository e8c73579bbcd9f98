"""Login attempts, limited per user name and per client address (in this process's memory).

A failed login counts against both its user name and its address; once either has had
``limit`` failures within ``window_seconds``, further attempts are refused (429) until the
oldest failure leaves the window — without checking the password, so guessing stays slow
even for the right one. A successful login clears its user name's failures. The counts live
in the web process: several processes behind one balancer each allow as many.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def wait_seconds(self, key: str) -> float:
        """0 when ``key`` may try now, else how long until it may."""
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - self.clock())

    def fail(self, key: str) -> None:
        self._recent(key).append(self.clock())
        if len(self._failures) > 100_000:  # a flood of distinct names: forget the quiet ones
            self._forget_old()

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= self.clock() - self.window:
            failures.popleft()
        return failures

    def _forget_old(self) -> None:
        horizon = self.clock() - self.window
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= horizon]:
            del self._failures[key]


class LoginThrottle:
    """Per user name (5 failures in 15 min) and per address (20 in 15 min)."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window_seconds: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.users = Throttle(per_user, window_seconds, clock)
        self.addresses = Throttle(per_address, window_seconds, clock)

    def wait_seconds(self, username: str, address: str) -> float:
        return max(self.users.wait_seconds(username.lower()), self.addresses.wait_seconds(address))

    def failed(self, username: str, address: str) -> None:
        self.users.fail(username.lower())
        self.addresses.fail(address)

    def succeeded(self, username: str) -> None:
        self.users.clear(username.lower())
