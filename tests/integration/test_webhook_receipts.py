"""Receipts through the real server: stored once, applied only forward, payloads kept and replayable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, text

from tests.support.db import messages
from tests.support.processes import wait_until
from tests.support.web import (
    Served,
    add_message,
    count,
    empty_webhook_tables,
    encode,
    post_signed,
    receipt,
    serve,
    webhook_settings,
)
from wanotify.ops.web.limits import Limits
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import WebhookPayload, WebhookReceipt
from wanotify.shared.receipts import replay_payloads


@pytest.fixture
def served(settings, sessions) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    empty_webhook_tables(sessions)
    with serve(webhook_settings(settings), Limits()) as s:
        yield s


def post(served: Served, payload: object) -> dict[str, int]:
    status, reply = post_signed(served, encode(payload))
    assert status == 200, reply
    return json.loads(reply.partition(b"\r\n\r\n")[2])["receipts"]  # type: ignore[no-any-return]


def status_of(sessions, wamid: str) -> str:  # type: ignore[no-untyped-def]
    return next(m.status for m in messages(sessions) if m.provider_message_id == wamid)


def receipts(sessions) -> list[WebhookReceipt]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return list(session.scalars(select(WebhookReceipt).order_by(WebhookReceipt.id)))


def test_receipts_move_a_message_forward_by_rank(served, sessions):
    wamid = add_message(sessions)
    assert post(served, receipt(wamid, "delivered", "100")) == {"moved": 1}
    assert post(served, receipt(wamid, "read", "101")) == {"moved": 1}
    assert status_of(sessions, wamid) == "read"


def test_a_duplicate_receipt_changes_nothing_and_stores_nothing_new(served, sessions):
    # Given a receipt that was applied
    wamid = add_message(sessions)
    payload = receipt(wamid, "delivered")
    assert post(served, payload) == {"moved": 1}
    stored = (count(sessions, "webhook_payloads"), count(sessions, "webhook_receipts"))
    # When Meta delivers the same payload again, and the same receipt inside another payload
    assert post(served, payload) == {"duplicate": 1}
    with transaction(sessions) as session:  # a later read, so the message would show a second apply
        session.execute(text("UPDATE whatsapp_logs SET status = 'sent'"))
    other = receipt(wamid, "delivered")
    other["entry"][0]["id"] = "2"  # type: ignore[index]
    assert post(served, other) == {"duplicate": 1}
    # Then nothing was applied twice and only the new body was kept
    assert status_of(sessions, wamid) == "sent"
    assert count(sessions, "webhook_receipts") == stored[1]
    assert count(sessions, "webhook_payloads") == stored[0] + 1


def test_an_older_receipt_arriving_late_is_a_no_op(served, sessions):
    wamid = add_message(sessions)
    post(served, receipt(wamid, "read", "200"))
    assert post(served, receipt(wamid, "delivered", "190")) == {"stale": 1}
    assert post(served, receipt(wamid, "sent", "180")) == {"stale": 1}
    assert status_of(sessions, wamid) == "read"


def test_a_failed_receipt_parks_a_sent_message_with_its_error(served, sessions):
    wamid = add_message(sessions)
    payload = receipt(wamid, "failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    assert post(served, payload) == {"parked": 1}
    [row] = messages(sessions)
    assert (row.status, row.error_code) == ("dead", "receipt_failed") and "131026" in (row.last_error or "")


def test_a_failed_receipt_after_delivered_is_recorded_but_does_not_move_the_message_back(served, sessions):
    wamid = add_message(sessions)
    post(served, receipt(wamid, "delivered", "300"))
    payload = receipt(wamid, "failed", "301", errors=[{"code": 131000, "title": "Something went wrong"}])
    assert post(served, payload) == {"late_failure": 1}
    assert status_of(sessions, wamid) == "delivered"
    late = receipts(sessions)[-1]
    assert (late.status, late.outcome) == ("failed", "late_failure") and "131000" in (late.error or "")


def test_a_delivered_receipt_after_a_failed_one_moves_the_parked_message_on(served, sessions):
    # Multi-device users: Meta may report failed, then delivered. The message reached a device.
    wamid = add_message(sessions)
    post(served, receipt(wamid, "failed", "400"))
    assert post(served, receipt(wamid, "delivered", "401")) == {"moved": 1}
    assert status_of(sessions, wamid) == "delivered"


def test_receipts_for_unknown_messages_and_malformed_items_are_acknowledged(served, sessions):
    assert post(served, receipt("wamid.nobody", "read")) == {"unknown": 1}
    for payload in ({"entry": "x"}, {"entry": [{"changes": [{"value": {"statuses": [{"id": 5}]}}]}]}, [1, 2],
                    receipt("wamid.x", "read", timestamp="soon"), receipt("wamid.x", "read", timestamp="9" * 30)):
        assert post(served, payload) == {}


def test_a_receipt_that_came_before_its_message_is_applied_by_a_replay(served, sessions):
    # Given a receipt for a message the sender had not recorded yet
    wamid = "wamid.early"
    post(served, receipt(wamid, "delivered"))
    add_message(sessions, wamid=wamid)
    # When the stored payloads are replayed
    [result] = replay_payloads(sessions, since=timedelta(hours=1))
    # Then it is applied once, and a second replay changes nothing
    assert result.counts == {"moved": 1} and status_of(sessions, wamid) == "delivered"
    assert replay_payloads(sessions, since=timedelta(hours=1))[0].counts == {"duplicate": 1}


def test_payloads_are_kept_as_received_with_their_outcome(served, sessions):
    wamid = add_message(sessions)
    body = encode(receipt(wamid, "read"))
    post_signed(served, body)
    with sessions() as session:
        [row] = session.scalars(select(WebhookPayload))
    assert (bytes(row.body), row.outcome, row.counts) == (body, "applied", {"moved": 1})


def test_the_server_prunes_payloads_older_than_the_retention(settings, sessions):
    # Given one payload received 8 days ago and one just now
    empty_webhook_tables(sessions)
    with transaction(sessions) as session:
        session.execute(text("INSERT INTO webhook_payloads (body, body_sha256, received_at) VALUES "
                             "('{}', 'old', now() - interval '8 days'), ('[]', 'new', now())"))
    # When the server starts (it prunes at start-up, then hourly)
    # Then only the recent one is left
    with serve(webhook_settings(settings, webhook_retention_days=7.0), Limits()):
        wait_until(lambda: kept(sessions) == ["new"], 10, "the old payload to be pruned")


def kept(sessions) -> list[str]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return list(session.scalars(select(WebhookPayload.body_sha256)))


def test_requests_and_receipts_are_counted_in_prometheus(settings, sessions):
    empty_webhook_tables(sessions)
    registry = CollectorRegistry()
    wamid = add_message(sessions)
    with serve(webhook_settings(settings), Limits(), registry) as served:
        post(served, receipt(wamid, "delivered"))
        post(served, receipt(wamid, "delivered"))
        post_signed(served, encode(receipt(wamid, "read")), secret="wrong")
    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)
    assert sample("wanotify_webhook_requests_total", status="200") == 2
    assert sample("wanotify_webhook_requests_total", status="403") == 1
    assert sample("wanotify_webhook_receipts_total", outcome="moved") == 1
    assert sample("wanotify_webhook_receipts_total", outcome="duplicate") == 1
