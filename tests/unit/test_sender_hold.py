"""The sender's hold and its schedule: which held head goes next, and when. No broker, no database."""

from __future__ import annotations

import pytest

from wanotify.consumers.sender.hold import Hold
from wanotify.consumers.sender.schedule import IDLE_SECONDS, LEAD_SECONDS, SETTLE_SECONDS, SendNext, Sleep, next_step
from wanotify.shared.priority import Priority


def _hold(*entries: tuple[Priority, str]) -> Hold[str]:
    hold: Hold[str] = Hold()
    for i, (priority, item) in enumerate(entries):
        hold.put(priority, item, float(i))
    return hold


def test_the_highest_priority_head_goes_first_whatever_the_order_of_arrival():
    hold = _hold((Priority.LOW, "low-0"), (Priority.NORMAL, "normal-1"), (Priority.HIGH, "high-2"))
    order = []
    while (head := hold.highest()) is not None:
        order.append(head.item)
        hold.remove(head)
    assert order == ["high-2", "normal-1", "low-0"]


def test_within_a_priority_the_first_held_goes_first():
    hold = _hold((Priority.NORMAL, "first"), (Priority.NORMAL, "second"))
    head = hold.highest()
    assert head is not None and head.item == "first"


def test_a_high_message_held_during_the_gap_is_the_one_sent_when_the_gap_ends():
    hold = _hold((Priority.LOW, "low"), (Priority.NORMAL, "normal"))
    # during the gap nothing goes, however much is held
    during = next_step(hold, leased=True, pause_left=0.0, wait_left=0.4)
    assert isinstance(during, Sleep) and during.why == "gap" and during.seconds <= 0.4
    hold.put(Priority.HIGH, "high", 9.0)
    at_the_end = next_step(hold, leased=True, pause_left=0.0, wait_left=LEAD_SECONDS / 2)
    assert isinstance(at_the_end, SendNext) and at_the_end.held.item == "high"


def test_nothing_is_sent_without_the_lease_or_during_a_pause_and_sleeps_are_at_most_a_second():
    hold = _hold((Priority.HIGH, "high"))
    assert next_step(hold, leased=False, pause_left=0.0, wait_left=0.0) == Sleep(1.0, "lease")
    assert next_step(hold, leased=True, pause_left=3600.0, wait_left=0.0) == Sleep(1.0, "paused")
    assert next_step(hold, leased=True, pause_left=0.3, wait_left=0.0) == Sleep(0.3, "paused")
    assert next_step(_hold(), leased=True, pause_left=0.0, wait_left=0.0) == Sleep(1.0, "idle")
    # a gap of an hour is looked at again every second (a lowered gap reaches it)
    assert next_step(hold, leased=True, pause_left=0.0, wait_left=3600.0) == Sleep(1.0, "gap")


def test_a_head_held_too_long_is_found_and_stopping_hands_every_head_back():
    hold = _hold((Priority.LOW, "old"), (Priority.HIGH, "new"))
    assert [h.item for h in hold.older_than(0.5, now=1.2)] == ["old"]
    assert sorted(h.item for h in hold.take_all()) == ["new", "old"]
    assert len(hold) == 0 and hold.highest() is None


def test_an_idle_sender_waits_a_moment_for_a_batchs_other_heads_before_sending_a_normal_one():
    # A welcome arrives first at an idle sender; its payment link, published with it, arrives 5 ms later.
    hold = _hold((Priority.NORMAL, "welcome"))
    first = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=0.005, idle_for=60.0)
    assert first == Sleep(SETTLE_SECONDS - 0.005, "settle")
    hold.put(Priority.HIGH, "payment link", 0.005)
    chosen = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=0.006, idle_for=60.0)
    assert isinstance(chosen, SendNext) and chosen.held.item == "payment link"  # high never waits


def test_the_settle_wait_ends_and_never_slows_a_sender_that_is_working_through_a_backlog():
    hold = _hold((Priority.LOW, "low"))
    settled = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=SETTLE_SECONDS, idle_for=60.0)
    assert isinstance(settled, SendNext)
    # its last call started a moment ago (a backlog at gap 0): no settle wait
    busy = next_step(_hold((Priority.LOW, "next")), leased=True, pause_left=0.0, wait_left=0.0, now=0.001,
                     idle_for=IDLE_SECONDS / 10)
    assert isinstance(busy, SendNext)


def test_right_after_a_high_message_a_held_normal_one_waits_for_the_high_queues_next_head():
    # The broker hands over a queue's next head only once the last is acked: a moment after it.
    hold = _hold((Priority.NORMAL, "welcome"))
    just_after = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=10.005, idle_for=0.01,
                           last_sent=(Priority.HIGH, 10.0))
    assert isinstance(just_after, Sleep) and just_after.why == "settle"
    assert just_after.seconds == pytest.approx(SETTLE_SECONDS - 0.005)
    hold.put(Priority.HIGH, "next payment link", 10.006)
    chosen = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=10.006, idle_for=0.01,
                       last_sent=(Priority.HIGH, 10.0))
    assert isinstance(chosen, SendNext) and chosen.held.item == "next payment link"
    # the high queue was empty after all: the normal one goes once the wait is over
    hold.remove(chosen.held)
    later = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=10.001 + SETTLE_SECONDS, idle_for=0.01,
                      last_sent=(Priority.HIGH, 10.0))
    assert isinstance(later, SendNext) and later.held.item == "welcome"
    # and a run of one priority never waits
    same = next_step(hold, leased=True, pause_left=0.0, wait_left=0.0, now=10.001, idle_for=0.01,
                     last_sent=(Priority.NORMAL, 10.0))
    assert isinstance(same, SendNext)
