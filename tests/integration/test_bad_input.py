"""Bad input through the real broker: the notifier parks everything and never crashes."""

from __future__ import annotations

import json
from collections import Counter

import pika
from hypothesis import HealthCheck, given, settings

from shared.events import PARK_REASONS
from shared.messages import REASON_HEADER
from shared.topology import Topology
from tests.e2e.scenario import member
from tests.support.broker import queue_depth
from tests.support.db import dead_events, messages
from tests.support.processes import wait_until
from tests.unit.malformed import malformed_events


def _collect_malformed(n: int) -> list[bytes]:
    bodies: list[bytes] = []

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(malformed_events)
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    return bodies


def _publish_raw(amqp_url: str, namespace: str, bodies: list[tuple[str, bytes]]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    exchange = Topology(namespace).events_exchange
    for routing_key, body in bodies:
        channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    connection.close()


def _parked_reasons(amqp_url: str, queue: str) -> Counter[str]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    reasons: Counter[str] = Counter()
    while True:
        method, properties, _body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        reasons[properties.headers[REASON_HEADER]] += 1
    connection.close()  # unacked: the messages stay parked
    return reasons


def test_a_thousand_malformed_events_are_all_parked_with_reasons_and_the_notifier_survives(stack, settings, sessions):
    notifier = stack.start("notifier")
    bodies = _collect_malformed(1200)
    named = [("member.registered", b"\xff\xfe not utf-8"), ("member.registered", b"[]"),
             ("member.registered", b"x" * 70000)]
    _publish_raw(settings.amqp_url, settings.namespace, [("any.thing", b) for b in bodies] + named)
    total = len(bodies) + len(named)

    def handled() -> int:  # a generated body may by chance be a valid event: it becomes a message
        return len(dead_events(sessions)) + len({m.event_id for m in messages(sessions)})

    wait_until(lambda: handled() >= total, 60, "every event to be parked or logged")
    parked = dead_events(sessions)
    valid_by_chance = handled() - len(parked)
    print(f"{total} published, {len(parked)} parked, {valid_by_chance} valid by chance")
    assert len(parked) + valid_by_chance == total
    assert all(p.reason in PARK_REASONS and p.detail for p in parked)
    queue = Topology(settings.namespace).events_dead_queue
    assert queue_depth(settings.amqp_url, queue) == len(parked)
    reasons = _parked_reasons(settings.amqp_url, queue)
    assert sum(reasons.values()) == len(parked) and set(reasons) <= set(PARK_REASONS)
    assert {"not_utf8", "not_object", "too_large"} <= set(reasons)
    # and the notifier is still up and still turns good events into messages
    assert notifier.popen.poll() is None
    _publish_raw(settings.amqp_url, settings.namespace,
                 [("member.registered", json.dumps(_envelope()).encode())])
    wait_until(lambda: any(m.recipient == "+628114040001" for m in messages(sessions)), 15, "the good event")


def _envelope() -> dict:  # type: ignore[type-arg]
    from shared.events import build_envelope

    return build_envelope("member.registered", member(1))
