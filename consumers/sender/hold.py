"""The deliveries a sender holds: the head of each of its three priority queues. Pure.

Each send queue is consumed with prefetch 1, so the broker hands over its head and nothing
more until that head is settled. The hold keeps those heads, unacknowledged; when the sender's
slot opens, ``highest`` names the one to send: high before normal before low. The others stay
at the head of their queues, so first-in-first-out within a priority holds, and a high message
that arrives during the gap is in the hold at once and goes next.

A head is never handed back on a timer (on a quorum queue every requeue counts toward its
delivery limit): only when the sender stops, loses its lease, is paused for longer than
``MAX_AGE`` (it then stops consuming until ``MAX_AGE`` before the pause ends), or has held it
for ``MAX_AGE`` (the broker's consumer timeout is 30 minutes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from wanotify.shared.priority import Priority
from wanotify.shared.topology import PRIORITY_ORDER

T = TypeVar("T")

MAX_AGE_SECONDS = 600.0  # hand a head back after this long, well inside the broker's consumer timeout


@dataclass(frozen=True)
class Held(Generic[T]):
    priority: Priority
    item: T
    since: float  # when it was delivered (monotonic clock)


class Hold(Generic[T]):
    """Held heads by priority; a queue normally has at most one (a reconnect may add its redelivery)."""

    def __init__(self) -> None:
        self._by_priority: dict[Priority, list[Held[T]]] = {p: [] for p in PRIORITY_ORDER}

    def put(self, priority: Priority, item: T, now: float) -> None:
        self._by_priority[priority].append(Held(priority, item, now))

    def highest(self) -> Held[T] | None:
        """The head to send next: the oldest held delivery of the highest priority held."""
        for priority in PRIORITY_ORDER:
            if self._by_priority[priority]:
                return self._by_priority[priority][0]
        return None

    def remove(self, held: Held[T]) -> None:
        entries = self._by_priority[held.priority]
        if held in entries:
            entries.remove(held)

    def older_than(self, age: float, now: float) -> list[Held[T]]:
        return [h for h in self if now - h.since > age]

    def take_all(self) -> list[Held[T]]:
        """Empty the hold, returning what it held (to hand back to the broker)."""
        everything = list(self)
        for entries in self._by_priority.values():
            entries.clear()
        return everything

    def __iter__(self) -> Iterator[Held[T]]:
        for priority in PRIORITY_ORDER:
            yield from list(self._by_priority[priority])

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_priority.values())
