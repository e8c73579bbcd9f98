"""The notifier's memory is bounded in bytes: a backlog of huge events is parked whole on the
dead queue, one by one, without the process holding them all, and the events behind them
still go out."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pika
import pytest

from tests.e2e.scenario import member
from tests.support.db import dead_events, messages
from tests.support.processes import run_wanotify, wait_until
from tests.support.raw import dead_copies, publish_raw
from wanotify.shared.events import build_envelope
from wanotify.shared.topology import Topology, declare_topology

HUGE = 5 * 1024 * 1024
RSS_LIMIT_MB = 300


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(send_gap_seconds=0.05)


class RssSampler:
    """Samples a process's resident set size from /proc while it runs."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.field("VmRSS"))
            time.sleep(self.interval)

    def field(self, name: str) -> int:
        try:
            line = next(x for x in self.status.read_text().splitlines() if x.startswith(f"{name}:"))
        except (OSError, StopIteration):
            return 0
        return int(line.split()[1])


def huge_event(i: int) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    envelope = build_envelope("member.registered", member(i) | {"name": "x" * HUGE}, event_id=event_id)
    return event_id, json.dumps(envelope).encode()


def test_fifty_five_megabyte_events_are_parked_whole_within_a_memory_bound_and_later_events_are_sent(
        stack, settings, sessions, fake_provider):
    # Given a backlog of 50 events of 5 MB each, then 20 ordinary events, waiting before the notifier starts
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    declare_topology(connection.channel(), Topology(settings.namespace))
    connection.close()
    huge = [huge_event(i) for i in range(50)]
    for event_id, body in huge:
        publish_raw(settings.amqp_url, settings.namespace, [("member.registered", body)],
                    pika.BasicProperties(delivery_mode=2, message_id=event_id))
    shas = {hashlib.sha256(body).hexdigest(): event_id for event_id, body in huge}
    del huge
    normal = [json.dumps(build_envelope("member.registered", member(100 + i))).encode() for i in range(20)]
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", b) for b in normal])
    # When the notifier and the sender start
    notifier = stack.start("notifier")
    stack.start("sender")
    with RssSampler(notifier.popen.pid) as rss:
        wait_until(lambda: len(dead_events(sessions)) == 50 and len(fake_provider.calls()) == 20, 120,
                   "50 parked and 20 sent")
        peak_hwm_kb = rss.field("VmHWM")
    print(f"notifier RSS: peak sampled {rss.peak_kb / 1024:.1f} MB, VmHWM {peak_hwm_kb / 1024:.1f} MB")
    # Then every huge event is parked once, as too_large, with its size, hash and a bounded head
    parked = dead_events(sessions)
    assert {p.body_sha256: p.event_id for p in parked} == shas
    assert all(p.reason == "too_large" and p.body_truncated and p.body_size > HUGE and len(p.body) == 4096
               for p in parked)
    # and the dead queue holds each one whole, naming its row
    copies = dead_copies(settings.amqp_url, Topology(settings.namespace).events_dead_queue)
    assert sorted(sha for _, sha, _ in copies) == sorted(shas)
    assert {h["x-wanotify-dead-id"] for h, _, _ in copies} == {p.id for p in parked}
    # and the events behind them were all sent, once each
    assert sorted(m.recipient for m in messages(sessions)) == [f"+62811404{100 + i:04d}" for i in range(20)]
    # and the notifier never held more than the bound
    assert peak_hwm_kb < RSS_LIMIT_MB * 1024
    assert notifier.popen.poll() is None


def test_a_too_large_event_is_never_replayed_and_stays_parked_whole(stack, settings, sessions):
    # Given a parked event of 100 kB
    stack.start("notifier")
    body = json.dumps(build_envelope("member.registered", member(1) | {"name": "x" * 100_000})).encode()
    publish_raw(settings.amqp_url, settings.namespace, [("member.registered", body)])
    [row] = wait_until(lambda: dead_events(sessions), 20, "the event to be parked")
    dead_queue = Topology(settings.namespace).events_dead_queue

    def wanotify(*args: str) -> subprocess.CompletedProcess[str]:
        return run_wanotify(args, stack.env())

    # When it is replayed by id, and then with every parked event
    by_id = wanotify("dead", "replay", f"e{row.id}")
    print(by_id.stderr.strip())
    everything = wanotify("dead", "replay", "--all", "--kind", "events", "--yes")
    # Then the replay by id is refused with the reason, and neither replay republished it
    assert by_id.returncode == 1 and len(by_id.stderr.strip().splitlines()) == 1
    assert "too large" in by_id.stderr and f"wanotify dead purge e{row.id}" in by_id.stderr
    assert everything.returncode == 0, everything.stderr
    [still] = dead_events(sessions)
    assert (still.id, still.status) == (row.id, "parked")
    assert [sha for _, sha, _ in dead_copies(settings.amqp_url, dead_queue)] == [hashlib.sha256(body).hexdigest()]
