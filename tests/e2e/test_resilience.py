"""Outages and signals: nothing acked is lost, nothing is sent twice."""

from __future__ import annotations

import time

import pytest

from tests.e2e.scenario import member
from tests.support.db import messages
from tests.support.outages import postgres_down, rabbitmq_down
from tests.support.processes import wait_until
from wanotify.producers.publisher import EventPublisher

# These stop or restart the machine's RabbitMQ or PostgreSQL: never run beside other tests.
pytestmark = pytest.mark.outage


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(send_gap_seconds=0.2)


def _all_sent(sessions, n: int, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    wait_until(lambda: len(rows := messages(sessions)) == n and all(m.status == "sent" for m in rows), timeout,
               f"{n} sent messages")


def test_consumers_wait_out_a_postgresql_outage(stack, publisher, fake_provider, sessions):
    procs = [stack.start("notifier"), stack.start("sender")]
    for i in range(3):
        publisher.publish("member.registered", member(i))
    fake_provider.wait_for_calls(1, timeout=15)
    with postgres_down():
        # Events keep arriving while the database is down: they wait on the broker, unacked
        for i in range(3, 6):
            publisher.publish("member.registered", member(i))
        time.sleep(3)
        assert all(p.popen.poll() is None for p in procs)
    _all_sent(sessions, 6)
    time.sleep(0.5)
    calls = fake_provider.calls()
    assert len(calls) == 6 and len({c["to"] for c in calls}) == 6


def test_consumers_reconnect_after_a_broker_restart(stack, publisher, fake_provider, sessions, settings):
    procs = [stack.start("notifier"), stack.start("sender")]
    for i in range(3):
        publisher.publish("member.registered", member(i))
    fake_provider.wait_for_calls(1, timeout=15)
    with rabbitmq_down():
        time.sleep(1)
    assert all(p.popen.poll() is None for p in procs)
    with EventPublisher(settings.amqp_url, settings.namespace) as again:
        for i in range(3, 6):
            again.publish("member.registered", member(i))
    _all_sent(sessions, 6)
    time.sleep(0.5)
    calls = fake_provider.calls()
    assert len(calls) == 6 and len({c["to"] for c in calls}) == 6


def test_sigterm_finishes_the_call_in_flight_records_it_and_exits(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    sender = stack.start("sender")
    fake_provider.latency = 1.5
    publisher.publish("member.registered", member(1))
    wait_until(lambda: [m for m in messages(sessions) if m.status == "pending"], 15, "a call in flight")
    assert sender.terminate(timeout=15) == 0
    [row] = messages(sessions)
    assert row.status == "sent"
    # A new sender finds nothing left to do for it
    fake_provider.latency = 0
    stack.start("sender")
    time.sleep(1)
    assert len(fake_provider.calls()) == 1
