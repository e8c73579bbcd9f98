"""How many unacknowledged events the broker may send the notifier: a bound in bytes.

RabbitMQ counts its prefetch in messages only (it does not implement basic.qos
prefetch_size), and 600 events of 10 MB would be 6 GB. So the window is sized from the
events themselves: as many as fit in a byte budget when each is as large as the largest
seen recently. A larger event shrinks the window at once; it grows back, doubling at most
once per window's worth of deliveries, only as events prove small again, like TCP's slow
start. It starts small, because nothing is known about the first events.

What it cannot bound: deliveries the broker has already sent when the window shrinks (at
most one window of the new, larger events). Starting small, and parking too-large events
on arrival, keeps that short-lived.
"""

from __future__ import annotations


class PrefetchWindow:
    def __init__(self, budget_bytes: int, max_count: int, start: int = 4) -> None:
        self.budget_bytes = budget_bytes
        self.max_count = max_count
        self.count = min(start, max_count)
        self._largest_now = 0  # largest size in the current epoch of max_count deliveries
        self._largest_before = 0  # ... and in the previous epoch
        self._seen = 0
        self._since_change = 0

    @property
    def largest(self) -> int:
        return max(self._largest_now, self._largest_before)

    def target(self) -> int:
        return max(1, min(self.max_count, self.budget_bytes // max(self.largest, 1)))

    def observe(self, size: int) -> int | None:
        """Note one delivery's size; returns the new window if it should change."""
        self._note(size)
        self._since_change += 1
        target = self.target()
        if target < self.count:
            return self._change(target)
        if target > self.count and self._since_change >= self.count:
            return self._change(min(target, self.count * 2))
        return None

    def _note(self, size: int) -> None:
        if self._seen >= self.max_count:
            self._largest_before, self._largest_now, self._seen = self._largest_now, 0, 0
        self._largest_now = max(self._largest_now, size)
        self._seen += 1

    def _change(self, count: int) -> int:
        self.count = count
        self._since_change = 0
        return count
