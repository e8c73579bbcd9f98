"""What a sender's lane does next: send the highest held head, or sleep, and for how long. Pure.

The lane asks this every time something changes (a delivery arrives, the lease or the pause
changes, a call ends) and at least every ``MAX_SLEEP_SECONDS``, so a gap lowered at run time
or a pause lifted reaches it within about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from wanotify.consumers.sender.hold import Held, Hold
from wanotify.shared.priority import Priority
from wanotify.shared.topology import PRIORITY_ORDER

T = TypeVar("T")

MAX_SLEEP_SECONDS = 1.0
# The lane claims at least this long before its gap ends; the call's thread waits out the rest
# precisely. The lane lengthens it to what its claims take (``Lane._lead``), up to MAX_LEAD_SECONDS.
LEAD_SECONDS = 0.01
# With 50 numbers at 0.2 s in one process, the lanes' own estimates settled at 88-116 ms: their
# claims wait for the interpreter and the database threads. A 40 ms ceiling started half the
# calls 9 ms or more late, and the pool made 1-11 % fewer calls (6 pairs of runs). A head chosen
# this early lets a higher priority that arrives later wait for the next slot; the lead is only
# this long while claims take this long, and is about 10 ms for one number. Below the 160 ms
# ahead of its slot that a claim accepts (``claims.CLAIM_LEAD_SECONDS``).
MAX_LEAD_SECONDS = 0.15
# An idle sender that receives a normal or low message waits this long for the other heads: the
# notifier publishes a batch's messages together, one per queue, in no set order of arrival, and
# a payment link published with a welcome must go first. Only when idle (no call for IDLE_SECONDS),
# so a backlog at any gap is never slowed. Likewise, right after sending a head, a lower priority
# waits this long for the broker to hand over that queue's next head (prefetch 1: the next comes
# only once the last is acked), so a run of high messages is not cut by a held normal one.
SETTLE_SECONDS = 0.02
IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class SendNext(Generic[T]):
    held: Held[T]


@dataclass(frozen=True)
class Sleep:
    seconds: float
    why: str  # lease, idle, paused, gap


def next_step(hold: Hold[T], *, leased: bool, pause_left: float, wait_left: float, now: float = 0.0,
              idle_for: float = 0.0, last_sent: tuple[Priority, float] | None = None, lead: float = LEAD_SECONDS,
              max_sleep: float = MAX_SLEEP_SECONDS) -> SendNext[T] | Sleep:
    """``wait_left``: seconds until this sender may call again (its gap, or another process's);
    ``now`` (the hold's clock), ``idle_for`` (seconds since the last call started) and
    ``last_sent`` (the priority of the head sent last, and when it was settled) decide the settle
    waits."""
    if not leased:
        return Sleep(max_sleep, "lease")
    head = hold.highest()
    if head is None:
        return Sleep(max_sleep, "idle")
    if pause_left > 0:
        return Sleep(min(pause_left, max_sleep), "paused")
    if wait_left > lead:
        return Sleep(min(wait_left - lead, max_sleep), "gap")
    settle = max(_settle_left(hold, head, now, idle_for), _refill_left(head, now, last_sent))
    if settle > 0:
        return Sleep(settle, "settle")
    # Chosen now, as the gap ends: a higher priority that came during the gap is already held.
    return SendNext(head)


def _settle_left(hold: Hold[T], head: Held[T], now: float, idle_for: float) -> float:
    if head.priority is Priority.HIGH or idle_for < IDLE_SECONDS:
        return 0.0
    newest = max(h.since for h in hold)
    return max(0.0, SETTLE_SECONDS - (now - newest))


def _refill_left(head: Held[T], now: float, last_sent: tuple[Priority, float] | None) -> float:
    """How long a lower priority still waits for the queue just sent from to hand over its next head."""
    if last_sent is None:
        return 0.0
    priority, settled_at = last_sent
    if PRIORITY_ORDER.index(head.priority) <= PRIORITY_ORDER.index(priority):
        return 0.0
    return max(0.0, SETTLE_SECONDS - (now - settled_at))
