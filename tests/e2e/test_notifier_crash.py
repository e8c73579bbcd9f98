"""A notifier killed at the worst moments: every event still ends as exactly one row, and a
redelivered event causes no second provider call."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pika
import pytest
from sqlalchemy import func, select

from tests.e2e.scenario import member
from tests.support.broker import queue_depth
from tests.support.db import messages
from tests.support.processes import wait_until
from tests.support.raw import publish_raw
from wanotify.shared.db.models import MessageLog
from wanotify.shared.events import build_envelope
from wanotify.shared.topology import Topology, declare_topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(send_gap_seconds=0.05)


def crashing_notifier(stack, mode: str) -> tuple[subprocess.Popen, Path]:  # type: ignore[no-untyped-def, type-arg]
    log = Path(tempfile.mkstemp(prefix="wanotify-crashing-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.e2e.crashing_notifier", mode], env=stack.env(),
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log


def declare(settings) -> None:  # type: ignore[no-untyped-def]
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    declare_topology(connection.channel(), Topology(settings.namespace))
    connection.close()


def encoded(i: int) -> bytes:
    return json.dumps(build_envelope("member.registered", member(i))).encode()


def test_an_event_redelivered_after_a_crash_between_commit_and_ack_yields_no_second_row_or_call(
        stack, settings, sessions, fake_provider):
    # Given a notifier that dies right after committing an event's row and publishing its message
    declare(settings)
    proc, log = crashing_notifier(stack, "before-ack")
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", encoded(7))])
    assert proc.wait(30) == -9, log.read_text()
    assert "before the ack" in log.read_text()
    [row] = messages(sessions)
    notifier_queue = Topology(settings.namespace).notifier_queue
    wait_until(lambda: queue_depth(settings.amqp_url, notifier_queue) == 1, 10, "the unacked event back on its queue")
    # When a notifier processes the redelivered event, and only then the sender starts
    stack.start("notifier")
    wait_until(lambda: queue_depth(settings.amqp_url, notifier_queue) == 0, 15, "the redelivery to be handled")
    stack.start("sender")
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", encoded(8))])
    wait_until(lambda: any(c["to"].endswith("4040008") for c in fake_provider.calls()), 20, "the marker's call")
    # Then the event has still one row and reached the provider once
    assert [m.id for m in messages(sessions) if m.recipient == row.recipient] == [row.id]
    assert [c["to"] for c in fake_provider.calls()].count(row.recipient.lstrip("+")) == 1
    log.unlink()


def test_a_notifier_killed_in_the_middle_of_a_large_batch_leaves_every_event_as_exactly_one_row(
        stack, settings, sessions):
    # Given 3000 events waiting, and a notifier that dies inside its third large batch, before the commit
    declare(settings)
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", encoded(i)) for i in range(3000)])
    proc, log = crashing_notifier(stack, "mid-write:3")
    assert proc.wait(60) == -9, log.read_text()
    assert "in the middle of writing a batch" in log.read_text()
    with sessions() as session:
        before_restart = session.scalar(select(func.count()).select_from(MessageLog))
    print(f"rows committed before the kill: {before_restart}")
    assert 0 < before_restart < 3000
    # When a notifier starts again
    stack.start("notifier")
    notifier_queue = Topology(settings.namespace).notifier_queue
    wait_until(lambda: queue_depth(settings.amqp_url, notifier_queue) == 0 and len(messages(sessions)) >= 3000, 60,
               "every event to be handled")
    # Then every event has exactly one row: none lost, none doubled
    rows = messages(sessions)
    assert sorted(m.recipient for m in rows) == sorted(f"+62811404{i:04d}" for i in range(3000))
    assert len({m.event_id for m in rows}) == 3000
    log.unlink()
