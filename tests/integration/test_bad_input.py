"""Bad input through the real broker: the notifier parks everything, once per body, for the
reason that describes it, and never crashes."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import Counter

import pika
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.scenario import member
from tests.support.db import dead_events, messages
from tests.support.processes import wait_until
from tests.support.raw import dead_copies, dead_message_ids, publish_raw
from tests.unit.malformed import first_failure, labelled_events, malformed_events
from wanotify.shared.events import MAX_EVENT_BYTES, build_envelope
from wanotify.shared.messages import DEAD_ID_HEADER, REASON_HEADER
from wanotify.shared.topology import Topology

TEN_MB = 10 * 1024 * 1024


def _collect(strategy: st.SearchStrategy, n: int) -> list:  # type: ignore[type-arg]
    drawn: list = []  # type: ignore[type-arg]

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: object) -> None:
        drawn.append(value)

    collect()
    return drawn


def test_a_thousand_malformed_events_are_parked_once_per_body_with_the_reason_for_each(stack, settings, sessions):
    notifier = stack.start("notifier")
    cases = _collect(labelled_events, 700) + [(b, first_failure(b)) for b in _collect(malformed_events, 600)]
    cases += [(b"\xff\xfe not utf-8", "not_utf8"), (b"[]", "not_object"), (b"x" * 70000, "too_large")]
    expected = {hashlib.sha256(body).hexdigest(): reason for body, reason in cases if reason != "valid"}
    valid_events = {json.loads(body)["event_id"] for body, reason in cases if reason == "valid"}
    publish_raw(settings.amqp_url, settings.namespace, [("any.thing", body) for body, _ in cases])

    def handled() -> int:
        return len(dead_events(sessions)) + len({m.event_id for m in messages(sessions)})

    wait_until(lambda: handled() >= len(expected) + len(valid_events), 90, "every event to be parked or logged")
    parked = dead_events(sessions)
    print(f"{len(cases)} published, {len(parked)} bodies parked, {len(valid_events)} valid",
          Counter(p.reason for p in parked))
    # Then each distinct bad body has one row, with the reason that describes it
    assert len(parked) == len(expected) and {p.body_sha256: p.reason for p in parked} == expected
    assert {str(m.event_id) for m in messages(sessions)} == valid_events
    # and every parked delivery has a copy on the dead queue naming its row, with the same reason
    copies = dead_copies(settings.amqp_url, Topology(settings.namespace).events_dead_queue)
    rows = {p.id: p for p in parked}
    assert len(copies) == sum(1 for _, reason in cases if reason != "valid")
    assert all(rows[h[DEAD_ID_HEADER]].reason == h[REASON_HEADER] == expected[sha] for h, sha, _ in copies)
    # and the notifier is still up and still turns good events into messages
    assert notifier.popen.poll() is None
    publish_raw(settings.amqp_url, settings.namespace,
                [("member.registered", json.dumps(build_envelope("member.registered", member(1))).encode())])
    wait_until(lambda: any(m.recipient == "+628114040001" for m in messages(sessions)), 15, "the good event")


def test_ten_megabyte_events_are_parked_as_too_large_with_the_whole_body_on_the_dead_queue(stack, settings, sessions):
    notifier = stack.start("notifier")
    event_id = str(uuid.uuid4())
    padded = build_envelope("member.registered", member(2) | {"name": "x" * TEN_MB}, event_id=event_id)
    bodies = [json.dumps(padded).encode(), os.urandom(TEN_MB), b"[" * TEN_MB]
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", b) for b in bodies],
                pika.BasicProperties(delivery_mode=2, message_id=event_id))
    publish_raw(settings.amqp_url, settings.namespace,
                [("member.registered", json.dumps(build_envelope("member.registered", member(3))).encode())])
    wait_until(lambda: len(dead_events(sessions)) == 3 and messages(sessions), 60, "three parked, one logged")
    # Then the database keeps each one's size, hash and a bounded head
    shas = {hashlib.sha256(b).hexdigest(): b for b in bodies}
    for row in dead_events(sessions):
        body = shas[row.body_sha256]
        assert (row.reason, row.body_size, row.body_truncated) == ("too_large", len(body), True)
        assert row.body == body[:4096] and len(row.body) == 4096 < MAX_EVENT_BYTES
        assert (row.event_id, row.event_type) == (event_id, "member.registered")  # from the message's properties
    # and the dead queue holds the whole bodies, each naming its row
    copies = dead_copies(settings.amqp_url, Topology(settings.namespace).events_dead_queue)
    assert sorted(sha for _, sha, _ in copies) == sorted(shas)
    assert {h[DEAD_ID_HEADER] for h, _, _ in copies} == {row.id for row in dead_events(sessions)}
    assert all(h[REASON_HEADER] == "too_large" and size == len(shas[sha]) for h, sha, size in copies)
    assert notifier.popen.poll() is None


def test_an_event_refused_at_its_envelope_keeps_its_event_id_in_the_row_and_on_the_dead_queue(stack, settings, sessions):
    stack.start("notifier")
    event_id = str(uuid.uuid4())
    # Given an event whose occurred_at has no time zone, published without a message_id
    envelope = build_envelope("member.registered", member(4), event_id=event_id) | {"occurred_at": "2026-11-22T10:00:00"}
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", json.dumps(envelope).encode())])
    wait_until(lambda: dead_events(sessions), 20, "the parked event")
    # Then its row and its copy name it by its own event_id
    [row] = dead_events(sessions)
    assert (row.reason, str(row.event_id), row.event_type) == ("invalid_envelope", event_id, "member.registered")
    assert dead_message_ids(settings.amqp_url, Topology(settings.namespace).events_dead_queue) == [event_id]
