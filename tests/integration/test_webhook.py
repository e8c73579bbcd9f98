"""Status webhooks: verification, signatures, and receipts that only move forward."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid

import pytest
import requests

from consumers.webhook import WebhookServer
from shared.db.engine import transaction
from shared.db.models import MessageLog
from tests.support.db import messages

SECRET = "app-secret"
TOKEN = "verify-me"


@pytest.fixture
def webhook(sessions):  # type: ignore[no-untyped-def]
    server = WebhookServer(("127.0.0.1", 0), TOKEN, SECRET, sessions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sent_message(sessions) -> str:  # type: ignore[no-untyped-def]
    wamid = f"wamid.{uuid.uuid4().hex}"
    with transaction(sessions) as session:
        session.add(MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="t",
                               recipient="+628114040707", body="hi", priority="normal", status="sent",
                               provider_message_id=wamid))
    return wamid


def post(url: str, payload: object, secret: str = SECRET) -> requests.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(url, data=body, headers={"X-Hub-Signature-256": signature,
                                                   "Content-Type": "application/json"}, timeout=5)


def receipt(wamid: str, status: str, **extra: object) -> dict:  # type: ignore[type-arg]
    item = {"id": wamid, "status": status, "timestamp": "1763800000", "recipient_id": "628114040707", **extra}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}


def test_the_verification_handshake_echoes_the_challenge_only_for_the_right_token(webhook):
    ok = requests.get(webhook, params={"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "42"},
                      timeout=5)
    assert (ok.status_code, ok.text) == (200, "42")
    bad = requests.get(webhook, params={"hub.mode": "subscribe", "hub.verify_token": "no", "hub.challenge": "42"},
                       timeout=5)
    assert bad.status_code == 403


def test_receipts_move_a_message_forward_and_never_back(webhook, sent_message, sessions):
    assert post(webhook, receipt(sent_message, "read")).status_code == 200
    assert messages(sessions)[0].status == "read"
    # a delivered receipt arriving after the read one is out of order: it changes nothing
    assert post(webhook, receipt(sent_message, "delivered")).status_code == 200
    assert messages(sessions)[0].status == "read"


def test_a_payload_with_a_bad_signature_is_refused_and_changes_nothing(webhook, sent_message, sessions):
    assert post(webhook, receipt(sent_message, "read"), secret="wrong").status_code == 401
    assert messages(sessions)[0].status == "sent"


def test_a_failed_receipt_parks_a_sent_message_with_its_error(webhook, sent_message, sessions):
    payload = receipt(sent_message, "failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    assert post(webhook, payload).status_code == 200
    [row] = messages(sessions)
    assert row.status == "dead" and "131026" in row.last_error


def test_malformed_but_signed_payloads_are_acknowledged_without_effect(webhook, sent_message, sessions):
    for payload in ({"entry": "x"}, {"entry": [{"changes": [{"value": {"statuses": [{"id": 5}]}}]}]}, [1, 2]):
        assert post(webhook, payload).status_code == 200
    assert messages(sessions)[0].status == "sent"
