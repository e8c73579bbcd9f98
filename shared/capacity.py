"""How long a backlog takes to send through the pool: the ETA of ``status``, the console and a
broadcast's dry run.

The model
---------
A backlog is ``messages`` messages to ``recipients`` distinct recipients, spread evenly (each
recipient gets ``messages / recipients`` of them). Each sender that may send works on its share
at the same time as the others, and three limits hold it back:

- **gap**: a sender makes one call per ``gap`` seconds, the first at once (after its pause,
  if it is paused), so in ``t`` seconds it makes ``floor(t / gap) + 1`` calls;
- **daily limit**: it may reach ``limit - used`` new recipients now and ``limit`` more each
  further ``window`` seconds (the rolling window, modelled as whole windows: an upper bound,
  since counted contacts really leave one by one). Every recipient is taken as new, which is
  also an upper bound (one already counted costs nothing);
- **recipient interval**: one recipient's ``k`` messages need at least ``(k - 1) * interval``
  seconds whatever the pool does.

Recipients go to whichever sender has room (as least-loaded routing does), so the pool drains
at the first time ``T`` at which the senders together can have served every recipient, and
not before the recipient interval allows. ``T`` is found by bisection over that monotone
capacity, then set exactly on the call or window boundary where it is reached.

What the model leaves out: calls that fail and are retried, messages arriving meanwhile, and
the jitter of a gap range (give its mean).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from wanotify.shared.priority import Priority

# An ETA past this is no ETA: the backlog will not drain (say, every sender is disabled).
HORIZON_SECONDS = 366 * 86_400.0
PRECISION = 0.01


# --- one sender's daily limit (the sending budget decides with these too) -----------------------

def allowance(limit: int | None, reserve: int, priority: Priority) -> int | None:
    """How many counted recipients this priority may reach: the reserve is for ``high`` only."""
    if limit is None:
        return None
    if priority == Priority.HIGH:
        return max(0, limit)
    return max(0, limit - max(0, reserve))


def must_leave(used: int, allowed: int | None) -> int:
    """How many counted contacts must leave the window before one more fits (0: it fits now)."""
    if allowed is None or used < allowed:
        return 0
    return used - allowed + 1


def window_eta(oldest_needed_first_at: datetime | None, now: datetime, window: float) -> float:
    """Seconds until the contact counted at ``oldest_needed_first_at`` leaves the window.

    None means no contact leaving can make room (the limit is 0, or smaller than the reserve):
    look again after a whole window, by when a warm-up step or a new limit may have come."""
    if oldest_needed_first_at is None:
        return window
    return max(0.0, (oldest_needed_first_at - now).total_seconds() + window)


# --- the pool's drain time -----------------------------------------------------------------------

@dataclass(frozen=True)
class SenderLoad:
    """One sender as the model sees it."""

    name: str
    gap: float  # seconds between two calls (the mean of a jittered range)
    limit: int | None = None  # unique recipients per window; None: no limit
    used: int = 0  # recipients already counted in the current window
    paused_for: float = 0.0  # seconds until it may send again (0: active; math.inf: disabled)


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: the backlog will not drain (no sender may send)
    bound: str  # what sets the time: "none" (empty), "gap", "daily_limit", "recipient_interval", "no_sender"


def estimate_drain(senders: Sequence[SenderLoad], messages: int, recipients: int, recipient_interval: float,
                   window: float) -> Estimate:
    """Seconds until ``messages`` to ``recipients`` distinct recipients are sent by ``senders``."""
    if messages <= 0:
        return Estimate(0.0, "none")
    recipients = min(max(recipients, 1), messages)
    per_recipient = messages / recipients
    pooled = _solve(senders, recipients, per_recipient, window)
    if pooled is None:
        return Estimate(None, "no_sender")
    interval_bound = (math.ceil(per_recipient) - 1) * max(recipient_interval, 0.0)
    if interval_bound > pooled:
        return Estimate(round(interval_bound, 2), "recipient_interval")
    unlimited = _solve([replace(s, limit=None) for s in senders], recipients, per_recipient, window)
    bound = "daily_limit" if unlimited is None or pooled > unlimited + PRECISION else "gap"
    return Estimate(round(pooled, 2), bound)


def sender_drain(sender: SenderLoad, messages: int, recipients: int, recipient_interval: float,
                 window: float) -> Estimate:
    """One sender's own backlog (``status`` per sender)."""
    return estimate_drain([sender], messages, recipients, recipient_interval, window)


def served(sender: SenderLoad, seconds: float, per_recipient: float, window: float) -> float:
    """How many recipients ``sender`` can have finished within ``seconds``."""
    t = seconds - sender.paused_for
    if t < 0 or math.isinf(sender.paused_for):
        return 0.0
    calls = math.inf if sender.gap <= 0 else math.floor(t / sender.gap) + 1
    by_calls = calls / per_recipient
    if sender.limit is None or window <= 0:
        return by_calls
    by_limit = max(0, sender.limit - sender.used) + sender.limit * math.floor(t / window)
    return min(by_calls, by_limit)


def _solve(senders: Sequence[SenderLoad], recipients: int, per_recipient: float, window: float) -> float | None:
    """The first time by which the senders together serve ``recipients``; None past the horizon."""

    def enough(t: float) -> bool:
        return sum(served(s, t, per_recipient, window) for s in senders) >= recipients - 1e-9

    if not enough(HORIZON_SECONDS):
        return None
    low, high = 0.0, 1.0
    while not enough(high):
        low, high = high, high * 2
    while high - low > PRECISION:
        middle = (low + high) / 2
        if enough(middle):
            high = middle
        else:
            low = middle
    if enough(0.0):
        return 0.0
    # Capacity only grows at a sender's call or window boundary: the earliest such moment in
    # (low, high] that suffices is the exact answer (so 3 messages at a 10 s gap take 20 s, not 20.004).
    exact = [t for s in senders for t in _boundaries(s, low, high, window) if enough(t)]
    return min(exact, default=high)


def _boundaries(sender: SenderLoad, low: float, high: float, window: float) -> list[float]:
    """The moments in (low, high] at which ``sender`` makes a call or enters a new window."""
    if math.isinf(sender.paused_for):
        return []
    found = []
    for period in (sender.gap, window):
        if period > 0:
            step = math.floor((high - sender.paused_for) / period)
            moment = sender.paused_for + step * period
            if low < moment <= high:
                found.append(moment)
    if low < sender.paused_for <= high:
        found.append(sender.paused_for)
    return found
