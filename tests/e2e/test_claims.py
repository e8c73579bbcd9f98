"""A message is never called twice: not while its sender still calls, nor after it died mid-call.

A redelivery while the original sender still lives (its broker connection dropped during a
long call) must wait for that sender's outcome; a sender killed mid-call leaves an outcome no
one knows, and the next sender parks the message for an admin instead of calling again.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.scenario import member
from tests.support.broker import broker_connection, close_connection, queue_depth
from tests.support.db import attempts, messages
from tests.support.processes import wait_until
from wanotify.shared.topology import Topology

CALL_SECONDS = 6.0  # longer than the sender's reconnect: the redelivery arrives mid-call


@pytest.fixture
def slow_provider(fake_provider):  # type: ignore[no-untyped-def]
    fake_provider.latency = CALL_SECONDS
    return fake_provider


def _sender_connection_name(sender) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r"sender ([0-9a-f]{8}) consuming", sender.log())
    assert found, sender.log()
    return f"wanotify-sender-{found.group(1)}"


def _sent(sessions) -> bool:  # type: ignore[no-untyped-def]
    rows = messages(sessions)
    return len(rows) == 1 and rows[0].status == "sent"


def test_a_copy_redelivered_while_its_sender_is_still_calling_is_not_sent_again(
        stack, publisher, slow_provider, sessions):
    # Given a sender in the middle of a long call
    stack.start("notifier")
    sender = stack.start("sender", WHATSAPP_TIMEOUT_SECONDS=30)
    connection = broker_connection(_sender_connection_name(sender))
    publisher.publish("member.registered", member(1))
    slow_provider.wait_for_calls(1, timeout=15)
    # When its broker connection drops, so the broker redelivers the message to it mid-call
    close_connection(connection)
    wait_until(lambda: "dropping stale copy" in sender.log(), 30, f"the redelivered copy to be dropped:\n{sender.log()}")
    # Then the call is made once, its outcome recorded, and nothing is resent
    wait_until(lambda: _sent(sessions), 5, "the message to be recorded as sent")
    assert len(slow_provider.calls()) == 1
    assert "died mid-call" not in sender.log()


def test_a_sender_killed_mid_call_has_its_message_parked_as_unknown_not_sent_again(
        stack, publisher, slow_provider, sessions, settings):
    # Given a sender killed while its call is in progress
    stack.start("notifier")
    first = stack.start("sender", WHATSAPP_TIMEOUT_SECONDS=30)
    publisher.publish("member.registered", member(2))
    slow_provider.wait_for_calls(1, timeout=15)
    first.kill()
    # When another sender takes over
    slow_provider.latency = 0.0
    second = stack.start("sender")
    # Then it parks the message, whose call may have reached WhatsApp, and calls no one again
    [dead] = wait_until(lambda: [m for m in messages(sessions) if m.status == "dead"], 30, "the message parked")
    assert dead.error_code == "outcome_unknown" and "may have delivered it" in (dead.last_error or "")
    assert [a.outcome for a in attempts(sessions, dead.id)] == ["unknown"]
    wait_until(lambda: queue_depth(settings.amqp_url, Topology(settings.namespace).send_dead_queue) == 1, 10,
               "the copy in the dead-letter queue")
    assert len(slow_provider.calls()) == 1
    assert "not sending" in second.log() and "outcome_unknown" in second.log()
