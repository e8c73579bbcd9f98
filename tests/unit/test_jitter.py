"""The pacer's margin: the 99.9th percentile of the measured arrival jitter, not a constant."""

from __future__ import annotations

from wanotify.consumers.sender.jitter import JitterEstimate
from wanotify.consumers.sender.pacing import SAFETY_MARGIN, Pacer


def test_before_enough_calls_the_margin_is_the_safe_default():
    estimate = JitterEstimate(0.001, min_samples=20)
    for _ in range(19):
        estimate.add(0.0002)
    assert estimate.percentile() is None
    assert estimate.margin() == 0.001


def test_the_margin_is_the_999th_percentile_of_the_delays():
    estimate = JitterEstimate(0.001, min_samples=20, floor=0.0, ceiling=1.0)
    for i in range(2000):
        estimate.add(i / 1_000_000)  # 0 .. 1.999 ms, evenly
    # nearest rank: the 1999th of 2000 samples, i.e. only the two largest are above it
    assert abs(estimate.margin() - 0.001998) < 1e-9


def test_old_delays_leave_the_window():
    estimate = JitterEstimate(0.001, window=100, min_samples=20, floor=0.0, ceiling=1.0)
    for _ in range(100):
        estimate.add(0.002)  # a loaded moment
    for _ in range(100):
        estimate.add(0.0003)  # quiet again: only these are left
    assert abs(estimate.margin() - 0.0003) < 1e-12


def test_the_margin_stays_between_floor_and_ceiling():
    low, high = JitterEstimate(0.001, floor=0.0001, ceiling=0.003), JitterEstimate(0.001, floor=0.0001, ceiling=0.003)
    for _ in range(50):
        low.add(0.0)
        high.add(0.5)
    assert low.margin() == 0.0001
    assert high.margin() == 0.003


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_aims_the_measured_margin_past_the_gap():
    # Calls of 2.0 ms and now and then 2.2 ms: the jitter is 0.2 ms, so after enough calls the
    # next call waits the gap plus 0.2 ms, not the default millisecond.
    clock = Clock()
    pacer = Pacer(clock)
    for i in range(60):
        pacer.mark_start()
        clock.now += 0.0022 if i % 10 == 5 else 0.002
        pacer.mark_end()
        clock.now += 0.05
    assert abs(pacer.jitter.margin() - 0.0002) < 1e-9
    assert abs(pacer.remaining(1.0) - (1.0 + 0.0002 - 0.05)) < 1e-9  # from the last call's end, 50 ms ago
    assert pacer.jitter.margin() < SAFETY_MARGIN
