"""The spacing of this process's own calls, on the monotonic clock.

We cannot see when the provider received a request: at the earliest when we sent it, at the
latest when its answer came. How a round trip splits between the request and the answer varies
from call to call (a new connection, a thread waiting on either side), and an estimate of the
split let calls arrive closer than the gap: in CI, a number's calls came 2.3 ms inside a 1 s
gap at the provider double, in 3 of 6 runs. So the gap counts from the previous call's *end*:
its request had surely arrived by then, and the next one cannot arrive before it is sent. A
call therefore starts at least its round trip plus the gap after the previous one started.

No margin for jitter is needed on top: however late the previous request arrived, it was
before its answer came back, and however fast the next one travels, it leaves after it is sent,
so the two arrivals are at least the gap apart on any clock that runs at our clock's rate. (An
earlier margin, the 99.9th percentile of the round trips' jitter, guarded the estimate of the
arrival; it added up to 3 ms to every gap here and kept nothing the end does not keep.) What is
left is the provider's clock, which is not ours: a quartz clock free-running off by up to
``CLOCK_RATE_TOLERANCE`` slow would measure a gap that much shorter, so every gap is stretched
by that fraction (2 ms on 10 s, 10 µs on 50 ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Two free-running quartz clocks differ in rate by up to about 100 ppm each (NTP-disciplined
# ones by far less): 200 ppm covers both ends.
CLOCK_RATE_TOLERANCE = 200e-6


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_start: float | None = None
        self._slot_base: float | None = None  # the previous call's end: its request had arrived by then

    @property
    def last_start(self) -> float | None:
        """When this process's last call started (monotonic clock), if it made one."""
        return self._last_start

    def remaining(self, gap: float) -> float:
        """Seconds until this process may start its next call."""
        if self._slot_base is None:
            return 0.0
        return max(0.0, self._slot_base + stretched(gap) - self._clock())

    def wait_for_slot(self, gap: float, not_before: float = 0.0) -> float | None:
        """Block until both our gap has passed and ``not_before``; mark the start; return the
        time since the previous start.

        Runs in the thread that makes the call, so nothing stands between the end of the wait
        and the request. It only sleeps: spinning through the last millisecond won 0.07 ms of
        lateness at a 50 ms gap, but a spinning thread holds the GIL, and with 50 numbers in
        one process the spins of some lanes delayed the others' calls (the pool made 5 % fewer).
        """
        def remaining() -> float:
            return max(self.remaining(gap), not_before - self._clock())

        while (left := remaining()) > 0:
            time.sleep(left)
        return self.mark_start()

    def mark_start(self) -> float | None:
        """Record that a call starts now; returns the time since the previous start."""
        now = self._clock()
        previous, self._last_start = self._last_start, now
        self._slot_base = now
        return None if previous is None else now - previous

    def mark_end(self) -> None:
        """Record that the call started last has returned (successfully or not)."""
        if self._last_start is None:
            return
        # The request had arrived by the time its answer came back: the gap counts from here.
        self._slot_base = self._clock()


def stretched(gap: float) -> float:
    """``gap`` on our clock such that a clock slower than ours by the tolerance still measures ``gap``."""
    return gap / (1 - CLOCK_RATE_TOLERANCE)


class GapDraw:
    """One sender's gap before its next call: its own fixed gap, one draw from its jittered range
    per call (kept until that call is made, so waiting never redraws it), or the runtime gap
    (``SEND_GAP_SECONDS`` / ``wanotify settings set``) when the sender has none of its own."""

    def __init__(self, gap_of: Callable[[float], float], jittered: bool) -> None:
        self._gap_of = gap_of  # runtime gap -> this sender's gap (a fresh draw when jittered)
        self._jittered = jittered
        self._drawn: float | None = None

    def current(self, runtime_gap: float) -> float:
        if not self._jittered:
            return self._gap_of(runtime_gap)
        if self._drawn is None:
            self._drawn = self._gap_of(runtime_gap)
        return self._drawn

    def called(self) -> None:
        """A call was made: the next one gets a fresh draw."""
        self._drawn = None
