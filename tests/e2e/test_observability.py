"""Each process's /metrics counts what happened; `wanotify status` reports it."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.scenario import member
from tests.support.db import dead_events, messages
from tests.support.processes import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(send_gap_seconds=0.2, retry_delay_seconds=0.5, max_retries=1)


def _status_of(sessions, recipient_suffix: str) -> str | None:  # type: ignore[no-untyped-def]
    rows = [m for m in messages(sessions) if m.recipient.endswith(recipient_suffix)]
    return rows[0].status if rows else None


def test_the_metrics_of_each_process_equal_what_happened(stack, publisher, fake_provider, sessions, settings):
    notifier_port, sender_port = _free_port(), _free_port()
    stack.start("notifier", METRICS_PORT=notifier_port)
    stack.start("sender", METRICS_PORT=sender_port)
    # Given one permanent failure, one transient failure that succeeds on retry, two clean sends
    fake_provider.fail_next(1, "permanent")
    publisher.publish("member.registered", member(1))
    wait_until(lambda: _status_of(sessions, "0001") == "dead", 15, "the permanent failure")
    fake_provider.fail_next(1, "5xx")
    publisher.publish("member.registered", member(2))
    wait_until(lambda: _status_of(sessions, "0002") == "sent", 15, "the retried message")
    publisher.publish("member.registered", member(3))
    publisher.publish("member.registered", member(4))
    # and two events that cannot become messages
    publisher.publish("member.registered", member(5) | {"phone": "12"})
    publisher.publish("member.renamed", member(6))
    wait_until(lambda: len(dead_events(sessions)) == 2 and len(fake_provider.calls()) == 5, 15, "everything")
    wait_until(lambda: [m.status for m in messages(sessions)].count("sent") == 3, 15, "three sent")
    # Then the sender's counters say so
    sender = scrape(sender_port)
    assert total(sender, "wanotify_messages_sent_total") == 3
    assert total(sender, "wanotify_messages_failed_total", kind="permanent") == 1
    assert total(sender, "wanotify_messages_failed_total", kind="retryable") == 1
    assert total(sender, "wanotify_retries_total") == 1
    assert total(sender, "wanotify_messages_dead_total", reason="permanent") == 1
    assert total(sender, "wanotify_provider_call_duration_seconds_count") == 5
    assert total(sender, "wanotify_send_gap_seconds_count") == 4
    # and the notifier's
    notifier = scrape(notifier_port)
    assert total(notifier, "wanotify_events_received_total") == 6
    assert total(notifier, "wanotify_events_parked_total", reason="invalid_phone") == 1
    assert total(notifier, "wanotify_events_parked_total", reason="unknown_type", event_type="unknown") == 1
    assert total(notifier, "wanotify_messages_queued_total", priority="normal") == 4
    # and the queue monitor reports the dead-letter queues (refreshed every few seconds)
    wait_until(lambda: total(scrape(sender_port), "wanotify_queue_depth", queue=f"{settings.namespace}.send.dead") == 1,
               15, "the monitor to see the parked message")
    assert total(scrape(sender_port), "wanotify_queue_consumers", queue=f"{settings.namespace}.send") == 1
    # No label carries a phone number (every recipient here contains these digits)
    for (_name, labels), _value in (sender | notifier).items():
        assert not any("811404" in v for _k, v in labels), labels


def test_status_reports_queues_backlog_statuses_and_the_next_messages(stack, publisher, fake_provider, sessions, settings):
    stack.settings = settings.with_(send_gap_seconds=30)
    stack.start("notifier")
    stack.start("sender")
    publisher.publish("member.registered", member(1))
    publisher.publish("payment.link_created", member(2) | {"amount": 5, "payment_url": "https://x.example/p"})
    publisher.publish("notification.requested", {"phone": "08114040003", "template": "test_message",
                                                  "priority": "low", "variables": {"sent_at": "x"}})
    wait_until(lambda: len(messages(sessions)) == 3 and len(fake_provider.calls()) == 1, 15, "one sent, two waiting")
    snapshot = json.loads(stack.cli("status", "--json"))
    assert snapshot["statuses"]["sent"] == 1 and snapshot["statuses"]["queued"] == 2
    assert snapshot["backlog"]["waiting"] == 2 and snapshot["backlog"]["drain_seconds"] == 30
    send_queue = next(q for q in snapshot["queues"] if q["name"] == f"{settings.namespace}.send")
    assert send_queue["consumers"] == 1
    assert snapshot["sender"]["last_call_at"] is not None and snapshot["sender"]["paused_until"] is None
    first_sent = fake_provider.calls()[0]["body"]
    expected_next = ["payment_link", "test_message"] if "selamat" in first_sent else ["welcome_new_member", "test_message"]
    assert [m["template"] for m in snapshot["next"]] == expected_next
    text = stack.cli("status")
    assert "backlog: 2 waiting" in text and "next to go out" in text
