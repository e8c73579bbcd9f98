"""What a sender's lane does next: send the highest held head, or sleep, and for how long. Pure.

The lane asks this every time something changes (a delivery arrives, the lease or the pause
changes, a call ends) and at least every ``MAX_SLEEP_SECONDS``, so a gap lowered at run time
or a pause lifted reaches it within about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from wanotify.consumers.sender.hold import Held, Hold

T = TypeVar("T")

MAX_SLEEP_SECONDS = 1.0
# The lane claims this long before its gap ends; the call's thread waits out the rest precisely.
LEAD_SECONDS = 0.01


@dataclass(frozen=True)
class SendNext(Generic[T]):
    held: Held[T]


@dataclass(frozen=True)
class Sleep:
    seconds: float
    why: str  # lease, idle, paused, gap


def next_step(hold: Hold[T], *, leased: bool, pause_left: float, wait_left: float,
              lead: float = LEAD_SECONDS, max_sleep: float = MAX_SLEEP_SECONDS) -> SendNext[T] | Sleep:
    """``wait_left``: seconds until this sender may call again (its gap, or another process's)."""
    if not leased:
        return Sleep(max_sleep, "lease")
    head = hold.highest()
    if head is None:
        return Sleep(max_sleep, "idle")
    if pause_left > 0:
        return Sleep(min(pause_left, max_sleep), "paused")
    if wait_left > lead:
        return Sleep(min(wait_left - lead, max_sleep), "gap")
    # Chosen now, as the gap ends: a higher priority that came during the gap is already held.
    return SendNext(head)
