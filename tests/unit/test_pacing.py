"""The pacer: start-to-start gaps on a fake clock."""

from __future__ import annotations

import time

import pytest

from wanotify.consumers.sender.pacing import CLOCK_RATE_TOLERANCE, Pacer, stretched


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _call(pacer: Pacer, clock: Clock, seconds: float) -> None:
    """One call of ``seconds`` on the fake clock."""
    pacer.mark_start()
    clock.now += seconds
    pacer.mark_end()


def test_the_first_call_may_start_at_once():
    assert Pacer(Clock()).remaining(10) == 0


# Two calls of 2 ms, then 3 s of quiet; 60 calls of 2 ms and now and then 5 ms, 10 ms apart:
# however the round trips varied, the next call waits the gap from the last call's end, no more.
@pytest.mark.parametrize(("durations", "pause", "gap"), [
    ([0.002, 0.002], 3.0, 10.0),
    ([0.005 if i % 10 == 5 else 0.002 for i in range(60)], 0.01, 0.05),
], ids=["steady", "varied round trips"])
def test_the_next_call_waits_for_the_gap_from_the_previous_calls_end(durations: list[float], pause: float,
                                                                    gap: float):
    clock = Clock()
    pacer = Pacer(clock)
    for seconds in durations:
        _call(pacer, clock, seconds)
        clock.now += pause
    assert abs(pacer.remaining(gap) - (stretched(gap) - pause)) < 1e-9


def test_after_the_very_first_call_the_gap_counts_from_its_end():
    clock = Clock()
    pacer = Pacer(clock)
    _call(pacer, clock, 0.005)
    assert abs(pacer.remaining(1.0) - stretched(1.0)) < 1e-9


def test_a_provider_clock_running_slow_by_the_tolerance_still_measures_the_whole_gap():
    # Its clock loses 200 ppm against ours: our 10 s gap plus the stretch is 10 s on its clock.
    clock = Clock()
    pacer = Pacer(clock)
    _call(pacer, clock, 0.0)
    ours = pacer.remaining(10.0)
    assert ours * (1 - CLOCK_RATE_TOLERANCE) >= 10.0 - 1e-9
    assert ours - 10.0 < 0.0021  # and it costs 2 ms on 10 s


def test_however_a_slow_round_trip_split_the_next_call_arrives_at_least_the_gap_after_the_previous():
    # A warm call takes 2 ms; a slow one 7 ms, its request 6.8 ms on the way in and its answer
    # 0.2 ms back; the next request is quick (0.1 ms). Counting from an arrival estimate (the end
    # minus the fastest round trip) put the two arrivals 1.1 ms inside the gap, as in CI; counting
    # from the end keeps them apart by at least the gap.
    clock = Clock()
    pacer = Pacer(clock)
    _call(pacer, clock, 0.002)
    clock.now += 1.0
    start = pacer.mark_start()
    slow_start = clock.now
    clock.now += 0.007
    pacer.mark_end()
    arrived = slow_start + 0.0068
    next_start = clock.now + pacer.remaining(1.0)
    assert start is not None and next_start + 0.0001 - arrived >= 1.0
    assert abs(next_start - (slow_start + 0.007 + stretched(1.0))) < 1e-9


def test_wait_for_slot_returns_the_time_since_the_previous_start():
    pacer = Pacer()
    assert pacer.wait_for_slot(0.0) is None
    since = pacer.wait_for_slot(0.01)
    assert since is not None and since >= 0.01


def test_waiting_for_the_slot_sleeps_instead_of_spinning():
    # Many numbers' lanes wait in one process: a lane that spun through the end of its wait
    # would hold the GIL and delay the others. Ten waits of 30 ms cost next to no CPU.
    pacer = Pacer()
    pacer.wait_for_slot(0.0)
    cpu = time.thread_time()
    for _ in range(10):
        pacer.wait_for_slot(0.03)
    assert time.thread_time() - cpu < 0.003
