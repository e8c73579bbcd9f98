"""`wanotify status` per sender: state, lease holder, consumer, queues, daily usage; and its cost
with 50 senders."""

from __future__ import annotations

import json
import time

import pika
from sqlalchemy import delete, update

from tests.support.pool import add_numbers, numbers_cleanup, pinned
from tests.support.processes import wait_until
from wanotify.ops.admin.status import collect, render
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import SenderRow
from wanotify.shared.monitoring import QueueProbe
from wanotify.shared.topology import Topology, declare_topology

__all__ = ["numbers_cleanup"]  # the fixture, used by name


def by_name(snapshot: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["name"]: s for s in snapshot["senders"]}


def test_status_shows_each_senders_state_lease_consumer_queues_and_usage(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given three numbers served by one sender process, b paused by an admin and holding messages
    env = add_numbers(sessions, fake_provider.url, ["a", "b", "c"], 0.2)
    with transaction(sessions) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "a").values(daily_limit=250))
    stack.cli("senders", "pause", "b", "--reason", "number under review")
    stack.start("notifier")
    stack.start("sender", **env)
    for i in range(3):
        publisher.publish("notification.requested", pinned(i, "b", "low"))
    publisher.publish("notification.requested", pinned(9, "a", "normal"))
    fake_provider.wait_for_calls(1, timeout=20)

    def shown() -> dict[str, dict]:  # type: ignore[type-arg]
        return by_name(json.loads(stack.cli("status", "--json")))

    senders = wait_until(lambda: (s := shown())["b"]["waiting"] == 3 and s["a"]["daily"]["used"] == 1 and s,
                         30, "b's three messages waiting and a's recipient counted")
    print({name: (s["state"], s["queues"], s["daily"]["used"], s["lease_process"]) for name, s in senders.items()})
    # Then each sender has its own state, lease, consumer, queues and daily usage
    a, b, c = senders["a"], senders["b"], senders["c"]
    assert (a["state"], b["state"], c["state"]) == ("active", "paused", "active")
    assert b["pause_kind"] == "by_hand" and "number under review" in b["pause_reason"]
    # (the paused sender's lane may hold the head of its low queue, unacknowledged: not "ready")
    assert b["queues"]["high"] == b["queues"]["normal"] == 0 and b["queues"]["low"] in (2, 3)
    assert all(s["lease_holder"] and ":" in s["lease_process"] and s["consumer_attached"] for s in (a, c))
    assert a["daily"] == {"used": 1, "limit": 250, "reserve": 0, "full": False, "eta_seconds": None}
    assert c["daily"]["limit"] is None
    text = stack.cli("status")
    assert "number under review" in text and "1 of 250" in text and "consumer attached" in text


def test_status_with_fifty_senders(stack, settings, sessions, numbers_cleanup):
    """The figure for the record (`status` should answer within a second); what it shows is asserted."""
    names = [f"n{i:02d}" for i in range(50)]
    add_numbers(sessions, "http://127.0.0.1:9", names, 1.0)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:  # the 150 send queues, as a sender process declares them (the namespace's cleanup deletes them)
        declare_topology(connection.channel(), Topology.of(settings), tuple(names))
    finally:
        connection.close()
    probe = QueueProbe(settings.amqp_url)
    try:
        with sessions() as session:
            collect(settings, session, probe)  # the broker connection opens once
            started = time.perf_counter()
            snapshot = collect(settings, session, probe)
            elapsed = time.perf_counter() - started
            text = render(snapshot)
    finally:
        probe.close()
    print(f"status with 50 senders (150 send queues probed) took {elapsed * 1000:.0f} ms")
    assert len(snapshot["senders"]) == 50 and "n49" in text
    assert all(s["queues"] == {"high": 0, "normal": 0, "low": 0} for s in snapshot["senders"])
    with transaction(sessions) as session:
        session.execute(delete(SenderRow))
