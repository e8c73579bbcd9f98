"""The HTTP API as its users meet it: `wanotify api-keys …`, `run web --only api`, and the pipeline behind it."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
from sqlalchemy import select, text

from tests.support.db import messages
from tests.support.processes import Proc, wait_until
from tests.support.stack import Stack
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import AuditEntry

MEMBER = {"member_id": "M-1001", "name": "Budi", "phone": "08114040707"}
Web = Callable[..., str]


@pytest.fixture
def no_keys(sessions):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE api_keys"))
        session.execute(text("DELETE FROM audit_log WHERE action LIKE 'api_key.%'"))
    return sessions


@pytest.fixture
def web(stack: Stack, no_keys) -> Iterator[Web]:  # type: ignore[no-untyped-def]
    """Starts `wanotify run web --only api` with extra environment; returns its base URL."""
    started: list[Proc] = []

    def start(**extra: object) -> str:
        proc = Proc(["run", "web", "--only", "api", "--port", "0"], stack.env(**extra), ready="web: serving", name="web")
        started.append(proc)
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", proc.log())
        assert match, proc.log()
        return match[1]

    yield start
    for proc in started:
        proc.close()


def create_key(stack: Stack, name: str) -> str:
    created = json.loads(stack.cli("api-keys", "create", name, "--json"))
    assert created["name"] == name
    return str(created["key"])


def post(url: str, key: str, event: dict[str, object]) -> requests.Response:
    return requests.post(f"{url}/api/v1/events", json=event, headers={"Authorization": f"Bearer {key}"}, timeout=15)


def test_an_event_posted_twice_over_http_becomes_one_provider_call_whose_status_reads_back(stack, web, fake_provider,
                                                                                           sessions):
    # Given the notifier, the sender and the API, and a key made on the command line
    stack.start("notifier")
    stack.start("sender")
    url = web()
    key = create_key(stack, "crm")
    # When an app posts an event, and posts it again (a retry after a lost answer)
    event = {"event_id": str(uuid.uuid4()), "event_type": "member.registered", "data": MEMBER}
    answers = [post(url, key, event) for _ in range(2)]
    # Then both answers are 202 with the event's id, and the provider is called once
    assert [(a.status_code, a.json()) for a in answers] == [(202, {"event_id": event["event_id"]})] * 2
    [call] = fake_provider.wait_for_calls(1, timeout=30)
    assert call["to"].endswith("8114040707")
    time.sleep(1.0)  # five gaps: a second message would have gone by now
    assert len(fake_provider.calls()) == 1 and len(messages(sessions)) == 1
    # and the app reads the message's status, with the number masked
    headers = {"Authorization": f"Bearer {key}"}
    status = wait_until(lambda: _sent(url, event["event_id"], headers), 15, "the message to read as sent")
    assert status["template"] == "welcome_new_member" and status["attempts"] == 1 and status["sender"] == "default"
    assert status["recipient"] == "6281******07"
    # and the server serves the api only: no console behind /
    assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok", "parts": ["api"]}
    assert requests.get(f"{url}/", timeout=5, allow_redirects=False).status_code == 404


def _sent(url: str, event_id: str, headers: dict[str, str]) -> dict[str, object] | None:
    found = requests.get(f"{url}/api/v1/messages", params={"event_id": event_id}, headers=headers, timeout=10).json()
    sent = [m for m in found["messages"] if m["status"] == "sent"]
    return sent[0] if sent else None


def test_a_key_revoked_on_the_command_line_gets_401_and_keys_are_listed_without_their_secret(stack, web, no_keys):
    url = web()
    key = create_key(stack, "shop")
    assert post(url, key, {"event_type": "member.registered", "data": MEMBER}).status_code == 202
    stack.cli("api-keys", "revoke", "shop")
    # the server remembers a key for a few seconds; then the revocation holds
    [refused] = wait_until(lambda: [r for r in [post(url, key, {"event_type": "member.registered", "data": MEMBER})]
                                    if r.status_code == 401], 15, "the revoked key to be refused", interval=0.2)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer") and refused.json()["error"] == "unauthorized"
    listing = stack.cli("api-keys", "list", "--json")
    [shown] = json.loads(listing)
    assert (shown["name"], shown["state"]) == ("shop", "revoked") and shown["last_used_at"] and key not in listing
    assert shown["prefix"] == key[:12]
    with no_keys() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("api_key.%"))
                                  .order_by(AuditEntry.id)).all()
    assert actions == ["api_key.create", "api_key.revoke"]


def test_a_second_key_by_the_same_name_and_a_second_revocation_are_refused_in_one_line(stack, no_keys):
    create_key(stack, "dup")
    with pytest.raises(AssertionError, match="exists already"):
        stack.cli("api-keys", "create", "dup")
    stack.cli("api-keys", "revoke", "dup")
    with pytest.raises(AssertionError, match="revoked already"):
        stack.cli("api-keys", "revoke", "dup")


def test_over_the_configured_rate_limit_an_app_gets_429_with_retry_after(stack, web):
    url = web(API_RATE_LIMIT="0.1", API_RATE_BURST="2")
    key = create_key(stack, "bulk")
    codes = [post(url, key, {"event_type": "member.registered", "data": MEMBER}) for _ in range(3)]
    assert [c.status_code for c in codes] == [202, 202, 429]
    assert int(codes[2].headers["Retry-After"]) >= 1 and codes[2].json()["error"] == "rate_limited"
