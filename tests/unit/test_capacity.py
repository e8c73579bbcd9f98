"""The pool's drain-time model: gaps, daily limits, the recipient interval, pauses."""

from __future__ import annotations

import math

import pytest

from wanotify.shared.capacity import Estimate, SenderLoad, estimate_drain, sender_drain, served

DAY = 86_400.0


def eta(senders: list[SenderLoad], messages: int, recipients: int, interval: float = 0.0, window: float = DAY):
    return estimate_drain(senders, messages, recipients, interval, window)


def test_an_empty_backlog_drains_at_once():
    assert eta([SenderLoad("a", 10)], 0, 0) == Estimate(0.0, "none")


def test_one_sender_without_limits_makes_one_call_per_gap_the_first_at_once():
    estimate = sender_drain(SenderLoad("a", 10), 5, 5, 0.0, DAY)
    assert estimate.seconds == 40
    assert estimate.bound == "gap"


def test_three_senders_share_the_backlog():
    senders = [SenderLoad(name, 1.0) for name in "abc"]
    assert eta(senders, 30, 30).seconds == 9


def test_a_faster_sender_takes_more_of_the_backlog():
    # a: one call per second, b: one per 3 s; in 6 s a makes 7 calls and b 3: 10 messages.
    assert eta([SenderLoad("a", 1), SenderLoad("b", 3)], 10, 10).seconds == 6


def test_a_full_sender_waits_whole_windows_for_its_further_recipients():
    # 2 recipients free now, 5 per further window: 12 recipients need two more windows.
    sender = SenderLoad("a", 1, limit=5, used=3)
    estimate = eta([sender], 12, 12, window=100)
    assert estimate.seconds == 200
    assert estimate.bound == "daily_limit"


def test_the_recipient_interval_bounds_one_recipient_with_many_messages():
    estimate = eta([SenderLoad("a", 0.2)], 5, 1, interval=2)
    assert estimate.seconds == pytest.approx(8)
    assert estimate.bound == "recipient_interval"


def test_a_paused_sender_starts_when_its_pause_ends_and_a_disabled_one_never():
    assert eta([SenderLoad("a", 1, paused_for=30)], 3, 3).seconds == 32
    assert eta([SenderLoad("a", 1, paused_for=math.inf), SenderLoad("b", 2)], 3, 3).seconds == 4


def test_no_sender_that_may_send_means_no_eta():
    estimate = eta([SenderLoad("a", 1, paused_for=math.inf)], 3, 3)
    assert estimate.seconds is None and estimate.bound == "no_sender"
    assert eta([], 3, 3).seconds is None
    assert eta([SenderLoad("a", 1, limit=0)], 3, 3).seconds is None


def test_served_counts_recipients_by_calls_and_by_the_limit():
    sender = SenderLoad("a", 1, limit=4, used=1)
    assert served(sender, 9, 2, DAY) == 3  # 10 calls make 5 recipients, the limit allows 3
    assert served(SenderLoad("a", 1), 9, 2, DAY) == 5


def test_more_recipients_than_messages_is_read_as_one_message_each():
    assert eta([SenderLoad("a", 1)], 3, 10).seconds == 2


def test_an_odd_gap_lands_on_its_call_boundary_exactly():
    assert eta([SenderLoad("a", 30)], 2, 2).seconds == 30
    assert eta([SenderLoad("a", 0.7), SenderLoad("b", 1.3)], 7, 7).seconds == pytest.approx(2.6)
