"""The pacer: start-to-start gaps on a fake clock."""

from __future__ import annotations

from wanotify.consumers.sender.pacing import SAFETY_MARGIN, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_call_may_start_at_once():
    assert Pacer(Clock()).remaining(10) == 0


def test_the_next_call_waits_for_the_gap_from_the_previous_start():
    clock = Clock()
    pacer = Pacer(clock)
    for _ in range(2):
        pacer.mark_start()
        clock.now += 0.002
        pacer.mark_end()
    clock.now += 3
    assert abs(pacer.remaining(10) - (10 + SAFETY_MARGIN - 3.002)) < 1e-9


def test_after_the_very_first_call_the_gap_and_the_margin_count_from_its_end():
    clock = Clock()
    pacer = Pacer(clock)
    pacer.mark_start()
    clock.now += 0.005
    pacer.mark_end()
    assert abs(pacer.remaining(1.0) - (1.0 + SAFETY_MARGIN)) < 1e-9


def test_an_ordinary_call_is_followed_after_the_gap_plus_the_safety_margin():
    clock = Clock()
    pacer = Pacer(clock)
    for _ in range(3):
        pacer.mark_start()
        clock.now += 0.002
        pacer.mark_end()
    assert abs(pacer.remaining(0.05) - (0.05 + SAFETY_MARGIN - 0.002)) < 1e-9


def test_a_call_slower_than_usual_pushes_the_next_one_back_by_the_difference_and_keeps_the_margin():
    # A warm call takes 2 ms; a call that had to connect first takes 7 ms and so may have
    # reached the provider 5 ms after it started: the next call waits those 5 ms too, and the
    # margin on top (the slow call's request may have been later still: its answer was quick).
    clock = Clock()
    pacer = Pacer(clock)
    for duration in (0.002, 0.007):
        pacer.mark_start()
        start = clock.now
        clock.now += duration
        pacer.mark_end()
    assert abs(pacer.remaining(1.0) - (start + 0.005 + 1.0 + SAFETY_MARGIN - clock.now)) < 1e-9
    assert SAFETY_MARGIN < 0.005


def test_wait_for_slot_returns_the_time_since_the_previous_start():
    pacer = Pacer()
    assert pacer.wait_for_slot(0.0) is None
    since = pacer.wait_for_slot(0.01)
    assert since is not None and since >= 0.01
