"""The gap holds across restarts, kills and replicas, and defaults to ten seconds."""

from __future__ import annotations

import time

import pytest

from tests.e2e.scenario import gaps, requested
from tests.support.processes import wait_until

JITTER = 0.002


def _publish_backlog(publisher, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        publisher.publish("notification.requested", requested(i, "normal"))


def test_the_gap_holds_when_the_sender_is_killed_or_stopped_mid_backlog(stack, publisher, fake_provider, settings):
    gap = 3.0  # longer than a process takes to start, so the new sender must wait out the old one's gap
    stack.settings = settings.with_(send_gap_seconds=gap)
    stack.start("notifier")
    _publish_backlog(publisher, 5)
    first = stack.start("sender")
    # When the sender is SIGKILLed shortly after a call, and its successor SIGTERMed likewise
    fake_provider.wait_for_calls(1, timeout=20)
    time.sleep(0.3)
    first.kill()
    second = stack.start("sender")
    wait_until(lambda: len(fake_provider.calls()) >= 3, 20, "two calls from the second sender")
    time.sleep(0.3)
    assert second.terminate() == 0
    stack.start("sender")
    calls = fake_provider.wait_for_calls(5, timeout=40)
    spacing = gaps(calls)
    print("gaps across restarts:", [round(g, 3) for g in spacing])
    # Then no two calls were ever closer than the gap, and nothing was sent twice
    assert min(spacing) >= gap - JITTER
    assert len({c["body"] for c in calls}) == len(calls) == 5
    assert "stopped" in second.log()


def test_of_two_senders_running_at_once_only_one_sends(stack, publisher, fake_provider, settings):
    gap = 0.5
    stack.settings = settings.with_(send_gap_seconds=gap)
    stack.start("notifier")
    senders = [stack.start("sender"), stack.start("sender")]
    _publish_backlog(publisher, 6)
    calls = fake_provider.wait_for_calls(6, timeout=30)
    time.sleep(gap * 2)
    assert len(fake_provider.calls()) == 6
    assert min(gaps(calls)) >= gap - JITTER
    sent_by = sorted(proc.log().count(" sent ") for proc in senders)
    assert sent_by == [0, 6]


@pytest.mark.slow
def test_without_a_configured_gap_two_messages_leave_at_least_ten_seconds_apart(stack, publisher, fake_provider):
    stack.start("notifier", SEND_GAP_SECONDS=None)
    stack.start("sender", SEND_GAP_SECONDS=None)
    _publish_backlog(publisher, 2)
    calls = fake_provider.wait_for_calls(2, timeout=40)
    print(f"default gap: {calls[1]['t'] - calls[0]['t']:.3f} s")
    assert calls[1]["t"] - calls[0]["t"] >= 10.0 - JITTER


def test_a_lowered_gap_reaches_a_sender_holding_a_message_within_seconds(stack, publisher, fake_provider, settings):
    # Given a sender under an hour-long gap, holding the second of two messages
    stack.settings = settings.with_(send_gap_seconds=3600)
    stack.start("notifier")
    stack.start("sender")
    _publish_backlog(publisher, 2)
    fake_provider.wait_for_calls(1, timeout=20)
    time.sleep(1.5)
    assert len(fake_provider.calls()) == 1
    # When an admin lowers the gap at run time
    stack.cli("settings", "set", "message_delay_seconds", "1")
    lowered = time.monotonic()
    # Then the held message goes within a few seconds, not after the old hold ran out
    fake_provider.wait_for_calls(2, timeout=10)
    assert time.monotonic() - lowered < 5
