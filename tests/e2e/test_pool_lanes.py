"""Lanes: a slow number never holds up another, and numbers added or disabled while the
sender runs are picked up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from tests.support.db import sender_state
from tests.support.pool import add_numbers, calls_by_number, numbers_cleanup, pinned
from tests.support.processes import wait_until
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import SenderRow

__all__ = ["numbers_cleanup"]  # the fixture, used by name

SLOW_CALL = 4.0


@pytest.fixture
def slow_provider() -> Iterator[FakeProviderServer]:
    server = FakeProviderServer(latency=SLOW_CALL)
    server.start()
    yield server
    server.stop()


def test_a_slow_provider_on_one_number_does_not_delay_another(stack, publisher, fake_provider, slow_provider, sessions,
                                                             numbers_cleanup):
    # Given number "slow" whose provider takes 4 s a call, and number "fast" at the usual provider
    env = add_numbers(sessions, slow_provider.url, ["slow"], 0.2) | add_numbers(sessions, fake_provider.url, ["fast"], 0.2)
    stack.start("notifier", WHATSAPP_TIMEOUT_SECONDS=10)
    stack.start("sender", WHATSAPP_TIMEOUT_SECONDS=10, **env)
    # When the slow number's call is in progress and five messages come for the fast one
    publisher.publish("notification.requested", pinned(0, "slow"))
    [slow_call] = slow_provider.wait_for_calls(1, timeout=20)
    for i in range(1, 6):
        publisher.publish("notification.requested", pinned(i, "fast"))
    fast_calls = fake_provider.wait_for_calls(5, timeout=20)
    # Then the fast number sent all five while the slow call was still running
    print(f"fast calls {[round(c['t'] - slow_call['t'], 3) for c in fast_calls]} s after the slow call began")
    assert all(c["t"] < slow_call["t"] + SLOW_CALL for c in fast_calls)


def test_numbers_added_or_disabled_while_the_sender_runs_are_picked_up(stack, publisher, fake_provider, sessions,
                                                                      settings, numbers_cleanup):
    # Given a sender process serving number "a"
    env = add_numbers(sessions, fake_provider.url, ["a"], 0.2)
    stack.start("notifier")
    sender = stack.start("sender", TOKEN_B="token-b", **env)
    wait_until(lambda: "sender a: holding its lease" in sender.log(), 15, "number a's lane")
    # whose start line names the environment's provider only for default, which it does not serve
    start = next(line for line in sender.log().splitlines() if " consuming a" in line)
    assert start.endswith(" consuming a"), start
    # When number "b" is added, a message pinned to it is sent from it
    add_numbers(sessions, fake_provider.url, ["b"], 0.2)
    wait_until(lambda: "sender b: holding its lease" in sender.log(), 15, f"number b's lane:\n{sender.log()}")
    publisher.publish("notification.requested", pinned(1, "b"))
    calls = fake_provider.wait_for_calls(1, timeout=15)
    assert set(calls_by_number(calls)) == {"b"}
    # and when number "a" is disabled, its lane stops and hands its lease back
    with transaction(sessions) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "a").values(disabled_at=SenderRow.created_at))
    wait_until(lambda: "sender a: lane stopped (disabled or removed)" in sender.log(), 15, "number a's lane to stop")
    assert "sender b: lane stopped" not in sender.log()
    state = sender_state(sessions, settings.namespace, "a")
    assert state is not None and state.lease_holder is None


def test_a_lane_rebuilt_for_new_provider_settings_keeps_the_gap_since_the_last_call(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given number "a" at a 6 s gap that has just made a call
    gap = 6.0
    env = add_numbers(sessions, fake_provider.url, ["a"], gap)
    stack.start("notifier")
    sender = stack.start("sender", **env)
    publisher.publish("notification.requested", pinned(0, "a"))
    fake_provider.wait_for_calls(1, timeout=20)
    # When an operator changes its provider settings (the same server, written with a trailing
    # slash), the process rebuilds its lane, and a message for it comes at once
    with transaction(sessions) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "a")
                        .values(settings=SenderRow.settings.op("||")({"base_url": fake_provider.url + "/"})))
    wait_until(lambda: "sender a: lane stopped (its provider settings changed)" in sender.log(), 15, "a's lane rebuilt")
    publisher.publish("notification.requested", pinned(1, "a"))
    first, second = fake_provider.wait_for_calls(2, timeout=20)
    # Then the new lane still waits for the gap since the old lane's call
    print(f"calls {second['t'] - first['t']:.3f} s apart, across the rebuild")
    assert second["t"] - first["t"] >= gap


def test_a_sender_row_named_default_is_not_described_by_the_environment_s_provider(stack, fake_provider, sessions,
                                                                                 numbers_cleanup):
    # A row named default brings its own provider: the environment's says nothing about it
    sender = stack.start("sender", **add_numbers(sessions, fake_provider.url, ["default"], 0.2))
    start = next(line for line in sender.log().splitlines() if " consuming default" in line)
    assert start.endswith(" consuming default"), start
