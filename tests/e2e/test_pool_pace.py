"""One sender process serves a pool of numbers, each at its own pace."""

from __future__ import annotations

from collections import defaultdict

from tests.e2e.scenario import requested
from tests.support.pool import (
    JITTER,
    add_numbers,
    assert_high_went_next,
    calls_by_number,
    high_during_a_gap,
    label,
    min_gaps,
    number_of,
    numbers_cleanup,
)

__all__ = ["numbers_cleanup"]  # the fixture, used by name

NUMBERS = ["a", "b", "c"]


def test_three_numbers_at_a_one_second_gap_each_keep_it_and_together_send_three_times_as_fast(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given three numbers with a 1 s gap each, served by one sender process
    gap = 1.0
    env = add_numbers(sessions, fake_provider.url, NUMBERS, gap)
    stack.start("notifier")
    stack.start("sender", **env)
    # When 30 messages to 30 recipients are published at once (the notifier picks their numbers)
    for i in range(30):
        publisher.publish("notification.requested", requested(i, "normal"))
    calls = fake_provider.wait_for_calls(30, timeout=60)
    # Then every number's calls are at least the gap apart, as the provider sees them
    by_number = calls_by_number(calls)
    spacing = min_gaps(calls)
    span = calls[-1]["t"] - calls[0]["t"]
    print(f"calls per number {({n: len(c) for n, c in sorted(by_number.items())})}, minimum gap per number "
          f"{({n: round(g, 4) for n, g in sorted(spacing.items())})}, 30 calls in {span:.2f} s: "
          f"{(len(calls) - 1) / span:.2f} calls/s")
    assert set(by_number) == set(NUMBERS)
    assert all(g >= gap - JITTER for g in spacing.values()), spacing
    # and each recipient heard from one number only
    numbers_of: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        numbers_of[call["to"]].add(number_of(call))
    assert len(numbers_of) == 30 and all(len(n) == 1 for n in numbers_of.values())


def test_on_a_pool_number_a_high_message_arriving_during_the_gap_goes_next(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given a backlog of low and normal messages on one number of a pool, the first already sent
    env = add_numbers(sessions, fake_provider.url, ["a", "b"], 1.0)
    stack.start("notifier")
    stack.start("sender", **env)
    # When a high-priority message for that number arrives during a gap
    calls = high_during_a_gap(publisher, fake_provider, "a")
    order = [label(c) for c in calls]
    print("order:", order)
    # Then it is the very next call, and the rest go by priority, first in first out within one
    assert_high_went_next(order)
    assert {number_of(c) for c in calls} == {"a"}
    assert min(min_gaps(calls).values()) >= 1.0 - JITTER
