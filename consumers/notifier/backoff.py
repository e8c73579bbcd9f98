"""How long to hold deliveries before returning them when their messages could not be published.

Returning them at once makes a hot loop: the broker redelivers them immediately, they fail
the same way, and every pass costs a batch of database work. Waiting longer after each
failure in a row, up to a cap, keeps a broken publish path (a missing queue, a broker
refusing messages) cheap until it is fixed; the first success resets the wait.
"""

from __future__ import annotations


class Backoff:
    def __init__(self, first: float = 0.5, factor: float = 2.0, cap: float = 30.0) -> None:
        self.first = first
        self.factor = factor
        self.cap = cap
        self.delay = 0.0

    def failed(self) -> float:
        """One more failure in a row: the delay to wait before trying again."""
        self.delay = self.first if self.delay == 0 else min(self.delay * self.factor, self.cap)
        return self.delay

    def succeeded(self) -> None:
        self.delay = 0.0
