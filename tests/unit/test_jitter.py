"""A margin from a high percentile of recent delays (the lane's lead), not a constant."""

from __future__ import annotations

from wanotify.consumers.sender.jitter import JitterEstimate


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
