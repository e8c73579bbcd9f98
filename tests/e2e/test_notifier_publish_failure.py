"""When the notifier cannot publish (here: its dead queue was deleted), it backs off instead of
spinning on redeliveries, and parks each event once however often it comes back."""

from __future__ import annotations

import re

import pika

from tests.support.db import dead_events
from tests.support.processes import wait_until
from tests.support.raw import dead_copies, publish_raw
from wanotify.shared.messages import DEAD_ID_HEADER
from wanotify.shared.topology import Topology, declare_topology

BAD = [b"not json 1", b"not json 2", b"[3]"]


def delays(log: str) -> list[float]:
    return [float(d) for d in re.findall(r"they go back to the queue in ([\d.]+) s", log)]


def test_a_failing_publish_backs_off_exponentially_and_parks_each_event_once(stack, settings, sessions):
    # Given a running notifier whose dead queue has been deleted
    notifier = stack.start("notifier")
    topology = Topology(settings.namespace)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    connection.channel().queue_delete(topology.events_dead_queue)
    # When bad events arrive, so that parking them fails every time
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", body) for body in BAD])
    wait_until(lambda: 4.0 in delays(notifier.log()), 20, "a fourth failure in a row")
    # Then each failure waited longer than the one before, instead of redelivering at once
    seen = delays(notifier.log())
    print("delays:", seen)
    assert seen[:4] == [0.5, 1.0, 2.0, 4.0]
    assert len(seen) <= 5  # a hot loop would have failed hundreds of times by now
    # and however often they came back, each event has one row
    assert sorted(p.body for p in dead_events(sessions)) == sorted(BAD)
    # When the dead queue is back
    declare_topology(connection.channel(), topology)
    connection.close()
    wait_until(lambda: len(dead_copies(settings.amqp_url, topology.events_dead_queue)) == 3, 30, "the parked copies")
    # Then each copy names the one row of its event
    rows = {p.body_sha256: p.id for p in dead_events(sessions)}
    assert len(rows) == 3
    assert sorted(h[DEAD_ID_HEADER] for h, _, _ in dead_copies(settings.amqp_url, topology.events_dead_queue)) == \
        sorted(rows.values())
    assert {sha: rows[sha] for _, sha, _ in dead_copies(settings.amqp_url, topology.events_dead_queue)} == rows
    assert notifier.popen.poll() is None
