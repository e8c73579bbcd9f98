"""A quality or policy code pauses only the number that got it."""

from __future__ import annotations

import time

from tests.support.broker import queue_depth
from tests.support.db import sender_state
from tests.support.pool import JITTER, add_numbers, calls_by_number, min_gaps, numbers_cleanup, pinned
from tests.support.processes import wait_until
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

__all__ = ["numbers_cleanup"]  # the fixture, used by name

PAUSE = 6.0
GAP = 0.5


def test_a_quality_code_on_one_number_pauses_only_that_number_and_the_others_keep_their_pace(
        stack, publisher, fake_provider, sessions, settings, numbers_cleanup):
    # Given three numbers, and Meta answering the next call with a quality code (131048)
    env = add_numbers(sessions, fake_provider.url, ["a", "b", "c"], GAP)
    stack.start("notifier")
    stack.start("sender", QUALITY_PAUSE_SECONDS=PAUSE, **env)
    fake_provider.fail_next(1, "quality")
    # When number a's message gets it
    publisher.publish("notification.requested", pinned(0, "a"))
    [refused] = fake_provider.wait_for_calls(1, timeout=20)
    paused = wait_until(lambda: (s := sender_state(sessions, settings.namespace, "a")) and s.paused_until and s, 10,
                        "number a's pause")
    # and more messages come for every number
    for i in range(1, 13):
        publisher.publish("notification.requested", pinned(i, "abc"[i % 3]))
    calls = fake_provider.wait_for_calls(13, timeout=40)
    # Then only a was paused, with the reason, and its next call came after the pause
    assert paused.pause_reason and "131048" in paused.pause_reason
    assert all(sender_state(sessions, settings.namespace, n).paused_until is None for n in ("b", "c"))  # type: ignore[union-attr]
    by_number = calls_by_number(calls)
    a_after = by_number["a"][1]["t"] - refused["t"]
    print(f"number a's next call {a_after:.2f} s after the quality code; minimum gaps {min_gaps(calls)}")
    assert a_after >= PAUSE - 0.5  # the pause is stored on the database's clock, a little after the call
    # while b and c sent all theirs during a's pause, each number keeping its gap
    pause_ends = refused["t"] + PAUSE - 0.5
    assert all(c["t"] < pause_ends for n in ("b", "c") for c in by_number[n])
    assert len(by_number["b"]) == len(by_number["c"]) == 4
    assert all(g >= GAP - JITTER for g in min_gaps(calls).values())


def test_an_admin_pause_of_one_number_holds_only_its_messages_until_it_is_resumed(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given two numbers, one of them paused by an admin
    env = add_numbers(sessions, fake_provider.url, ["a", "b"], 0.2)
    stack.start("notifier")
    sender = stack.start("sender", **env)
    stack.cli("senders", "pause", "b", "--reason", "checking the number")
    # When messages come for both
    for i in range(6):
        publisher.publish("notification.requested", pinned(i, "ab"[i % 2]))
    fake_provider.wait_for_calls(3, timeout=20)
    time.sleep(1.5)
    # Then only a's are sent, and b's queues are not consumed meanwhile: its heads wait on the
    # broker, not handed back every ten minutes (each hand-back counts on a quorum queue)
    assert set(calls_by_number(fake_provider.calls())) == {"a"}
    assert "sender b: stopped consuming (paused for longer than a head may be held)" in sender.log()
    assert queue_depth(stack.settings.amqp_url, Topology(stack.settings.namespace).send_queue_for("b", Priority.NORMAL)) == 3
    # and once b is resumed, its messages go within about a second (the next lease renewal)
    stack.cli("senders", "resume", "b")
    calls = fake_provider.wait_for_calls(6, timeout=20)
    assert len(calls_by_number(calls)["b"]) == 3, sender.log()
