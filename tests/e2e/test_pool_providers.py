"""Sender rows name their own provider: `run sender` needs no WHATSAPP_PROVIDER then."""

from __future__ import annotations

from tests.support.pool import add_numbers, calls_by_number, numbers_cleanup, pinned

__all__ = ["numbers_cleanup"]  # the fixture, used by name


def test_a_sender_process_starts_without_whatsapp_provider_when_every_number_is_a_row(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    env = add_numbers(sessions, fake_provider.url, ["a"], 0.2)
    stack.start("notifier")
    stack.start("sender", WHATSAPP_PROVIDER=None, **env)
    publisher.publish("notification.requested", pinned(1, "a"))
    calls = fake_provider.wait_for_calls(1, timeout=30)
    assert set(calls_by_number(calls)) == {"a"}
