"""The HTTP API served by uvicorn in this process, against the real RabbitMQ and PostgreSQL.

Keys are made with the same service as `wanotify api-keys create`; what the API publishes is
read back from the notifier's queue (no notifier runs here: the e2e tests run the pipeline).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

import pika
import pytest
import requests
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from tests.support.broker import MANAGEMENT, queue_depth
from tests.support.web import serve
from wanotify.ops.admin.api_keys import create_key, revoke_key
from wanotify.ops.web.limits import Limits
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Attempt, DeadEvent, MessageLog, WebhookReceipt
from wanotify.shared.schemas import published_schemas
from wanotify.shared.topology import Topology, declare_topology

MEMBER = {"member_id": "M-1", "name": "Budi", "phone": "08114040707"}


@contextmanager
def serve_api(settings: Settings, registry: CollectorRegistry | None = None) -> Iterator[str]:
    """The api part alone on a free port; yields its base URL."""
    with serve(settings, Limits(), registry or CollectorRegistry(), parts=("api",)) as served:
        yield served.base


@pytest.fixture
def key(sessions) -> str:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE api_keys"))
        return create_key(session, "tests")


@pytest.fixture
def api(settings: Settings, key: str) -> Iterator[str]:
    declare(settings)  # the queue exists before anything is posted, so "nothing was published" can be read
    with serve_api(settings) as url:
        yield url


def declare(settings: Settings) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        declare_topology(connection.channel(), Topology.of(settings))
    finally:
        connection.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(url: str, key: str, body: object, path: str = "/api/v1/events") -> requests.Response:
    return requests.post(url + path, data=json.dumps(body), headers={**auth(key), "Content-Type": "application/json"},
                         timeout=15)


def queued(settings: Settings) -> list[tuple[pika.spec.BasicProperties, dict[str, object]]]:
    """Every event waiting in the notifier's queue (taken off it)."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel, found = connection.channel(), []
        while True:
            method, props, body = channel.basic_get(Topology.of(settings).notifier_queue, auto_ack=True)
            if method is None:
                return found
            found.append((props, json.loads(body)))
    finally:
        connection.close()


def test_an_event_is_published_persistent_with_its_id_and_the_answer_comes_after_the_confirm(api, key, settings):
    reply = post(api, key, {"event_type": "member.registered", "source": "crm", "data": MEMBER})
    assert reply.status_code == 202, reply.text
    event_id = reply.json()["event_id"]
    [(props, body)] = queued(settings)
    assert props.message_id == event_id and props.delivery_mode == 2 and props.content_type == "application/json"
    assert body["event_id"] == event_id and body["source"] == "crm" and body["data"] == MEMBER
    # occurred_at was absent: it is the time of receipt
    assert abs((datetime.fromisoformat(body["occurred_at"]) - datetime.now(UTC)).total_seconds()) < 30


def test_posting_the_same_event_id_twice_answers_202_with_that_id_both_times(api, key, settings):
    event = {"event_id": str(uuid.uuid4()), "event_type": "member.registered",
             "occurred_at": "2026-11-22T10:00:00+07:00", "data": MEMBER}
    answers = [post(api, key, event) for _ in range(2)]
    assert [(a.status_code, a.json()) for a in answers] == [(202, {"event_id": event["event_id"]})] * 2
    assert {b["occurred_at"] for _, b in queued(settings)} == {"2026-11-22T10:00:00+07:00"}  # the caller's time, kept


@pytest.mark.parametrize(("event", "path"), [
    ({"event_type": "member.registered", "data": {"member_id": "M-1", "name": "Budi"}}, "data.phone"),
    ({"event_type": "member.registered", "data": {**MEMBER, "phone": "12"}}, "data.phone"),
    ({"event_id": "not-a-uuid", "event_type": "member.registered", "data": MEMBER}, "event_id"),
    ({"event_type": "member.registered", "occurred_at": "yesterday", "data": MEMBER}, "occurred_at"),
    ({"event_type": "member.registered"}, "data"),
    ({"event_type": "payment.link_created", "data": {**MEMBER, "amount": 5, "payment_url": "ftp://x"}}, "data.payment_url"),
    ({"event_type": "nobody.listens", "data": MEMBER}, "event_type"),
    ([1, 2], ""),
])
def test_a_bad_envelope_gets_a_422_naming_the_field_and_nothing_is_published(api, key, settings, event, path):
    reply = post(api, key, event)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_event"
    assert path in [e["path"] for e in reply.json()["errors"]], reply.json()
    assert queued(settings) == []


def test_a_body_that_is_not_json_gets_400_and_one_too_large_gets_413(api, key):
    not_json = requests.post(f"{api}/api/v1/events", data=b"{nope", headers=auth(key), timeout=10)
    assert (not_json.status_code, not_json.json()["error"]) == (400, "not_json")
    huge = {"event_type": "member.registered", "data": {**MEMBER, "name": "x" * 70_000}}
    too_large = post(api, key, huge)
    assert (too_large.status_code, too_large.json()["error"]) == (413, "too_large")


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer wnk_unknown", "Bearer something-else"])
def test_a_request_without_a_valid_key_gets_401_with_www_authenticate(api, header):
    headers = {"Authorization": header} if header else {}
    reply = requests.post(f"{api}/api/v1/events", json={"event_type": "member.registered", "data": MEMBER},
                          headers=headers, timeout=10)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert reply.json()["error"] == "unauthorized"


def test_a_revoked_key_gets_401(settings, sessions, key):
    with serve_api(settings) as url:
        assert post(url, key, {"event_type": "member.registered", "data": MEMBER}).status_code == 202
        with transaction(sessions) as session:
            revoke_key(session, "tests")
        # the API remembers a key for a few seconds: within them the revocation takes hold
        deadline = time.monotonic() + 15
        while (status := post(url, key, {"event_type": "member.registered", "data": MEMBER}).status_code) == 202:
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.2)
        assert status == 401


def test_over_the_rate_limit_gets_429_with_retry_after_and_other_keys_are_not_slowed(settings, sessions, key):
    with transaction(sessions) as session:
        other = create_key(session, "other")
    with serve_api(settings.with_(api_rate_limit=0.2, api_rate_burst=3)) as url:
        event = {"event_type": "member.registered", "data": MEMBER}
        assert [post(url, key, event).status_code for _ in range(3)] == [202] * 3
        over = post(url, key, event)
        assert over.status_code == 429 and over.json()["error"] == "rate_limited"
        assert int(over.headers["Retry-After"]) >= 1
        assert post(url, other, event).status_code == 202


def test_a_batch_is_published_whole_and_answered_per_event(api, key, settings):
    events = [{"event_type": "member.registered", "data": {**MEMBER, "member_id": f"M-{i}"}} for i in range(3)]
    reply = post(api, key, {"events": events}, "/api/v1/events/batch")
    assert reply.status_code == 202, reply.text
    items = reply.json()["events"]
    assert [(i["index"], i["status"]) for i in items] == [(0, "accepted"), (1, "accepted"), (2, "accepted")]
    assert sorted(b["event_id"] for _, b in queued(settings)) == sorted(i["event_id"] for i in items)


def test_a_batch_with_one_bad_event_is_refused_whole_naming_that_event(api, key, settings):
    events = [{"event_type": "member.registered", "data": MEMBER},
              {"event_type": "member.registered", "data": {"member_id": "M-2", "name": "Ani"}}]
    reply = post(api, key, {"events": events}, "/api/v1/events/batch")
    assert reply.status_code == 422
    assert [e["path"] for e in reply.json()["errors"]] == ["events.1.data.phone"]
    assert queued(settings) == []
    too_many = post(api, key, {"events": [events[0]] * 501}, "/api/v1/events/batch")
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["path"] == "events"


def test_a_lone_surrogate_in_a_free_text_gets_422_naming_its_path_not_a_500(api, key, settings):
    event = {"event_type": "member.registered", "data": {**MEMBER, "note": "x\ud800"}}
    reply = post(api, key, event)
    assert reply.status_code == 422, reply.text
    assert [e["path"] for e in reply.json()["errors"]] == ["data.note"]
    batch = post(api, key, {"events": [{"event_type": "member.registered", "data": MEMBER}, event]},
                 "/api/v1/events/batch")
    assert batch.status_code == 422 and [e["path"] for e in batch.json()["errors"]] == ["events.1.data.note"]
    in_a_key = post(api, key, {"event_type": "notification.requested",
                               "data": {"phone": "08114040707", "template": "x", "variables": {"\ud800": 1}}})
    assert in_a_key.status_code == 422 and in_a_key.json()["errors"][0]["path"] == "data.variables"
    # a pair of surrogates is one character (an emoji), and welcome
    assert post(api, key, {"event_type": "member.registered",
                           "data": {**MEMBER, "note": "\U0001f600"}}).status_code == 202
    assert len(queued(settings)) == 1


def test_with_the_broker_unreachable_an_event_gets_503_with_retry_after(settings, key):
    with serve_api(settings.with_(amqp_url="amqp://guest:guest@127.0.0.1:1/")) as url:
        reply = post(url, key, {"event_type": "member.registered", "data": MEMBER})
    assert reply.status_code == 503 and reply.json()["error"] == "broker_unavailable"
    assert int(reply.headers["Retry-After"]) >= 1
    # the event may have reached the broker: the answer gives the id to post it again with
    assert uuid.UUID(reply.json()["event_id"]) and "this event_id" in reply.json()["message"]


def add_message(sessions, event_id: uuid.UUID) -> int:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE webhook_receipts CASCADE"))
        message = MessageLog(event_id=event_id, event_type="member.registered", template="welcome_new_member",
                             recipient="+628114040707", body="hi", priority="normal", status="read", attempts=2,
                             sender="default", provider_message_id="wamid.api", sent_at=datetime.now(UTC),
                             last_error="timeout calling +628114040707")
        session.add(message)
        session.flush()
        now = datetime.now(UTC)
        session.add(Attempt(log_id=message.id, attempt=1, started_at=now, finished_at=now, outcome="retry",
                            error="timeout calling +628114040707"))
        for status in ("delivered", "read"):
            session.add(WebhookReceipt(provider_message_id="wamid.api", status=status, provider_timestamp=now,
                                       outcome="applied", payload_id=None))
        return message.id


def test_a_message_reads_with_status_attempts_times_and_receipts_and_no_phone_in_clear(api, key, sessions):
    event_id = uuid.uuid4()
    message_id = add_message(sessions, event_id)
    one = requests.get(f"{api}/api/v1/messages/{message_id}", headers=auth(key), timeout=10)
    listed = requests.get(f"{api}/api/v1/messages", params={"event_id": str(event_id)}, headers=auth(key), timeout=10)
    assert one.status_code == 200 and listed.json() == {"messages": [one.json()]}
    message = one.json()
    assert (message["status"], message["attempts"], message["sender"]) == ("read", 2, "default")
    assert message["delivered_at"] and message["read_at"] and [r["status"] for r in message["receipts"]] == ["delivered", "read"]
    assert [c["outcome"] for c in message["calls"]] == ["retry"]
    assert "8114040707" not in one.text and message["recipient"] == "6281******07"


def test_an_event_the_notifier_parked_lists_no_messages_and_says_why(api, key, sessions):
    event_id = uuid.uuid4()
    with transaction(sessions) as session:
        session.add(DeadEvent(event_id=str(event_id), event_type="notification.requested", reason="template_missing",
                              detail="template 'promo_x' does not exist or is not active (for +628114040707)",
                              body=b"{}"))
    listed = requests.get(f"{api}/api/v1/messages", params={"event_id": str(event_id)}, headers=auth(key), timeout=10)
    assert listed.status_code == 200
    parked = listed.json()["parked"]
    assert listed.json()["messages"] == [] and parked["reason"] == "template_missing" and parked["parked_at"]
    assert "promo_x" in parked["detail"] and "8114040707" not in parked["detail"]
    # parked for one rule's template, an event may still have the other rules' messages
    message_id = add_message(sessions, event_id)
    both = requests.get(f"{api}/api/v1/messages", params={"event_id": str(event_id)}, headers=auth(key), timeout=10)
    assert [m["id"] for m in both.json()["messages"]] == [message_id] and both.json()["parked"] == parked
    # an event not (yet) handled has no such key: the two cases read apart
    unknown = requests.get(f"{api}/api/v1/messages", params={"event_id": str(uuid.uuid4())}, headers=auth(key),
                           timeout=10)
    assert unknown.json() == {"messages": []}


def test_unknown_messages_and_paths_get_json_404s_and_a_missing_event_id_422(api, key):
    missing = requests.get(f"{api}/api/v1/messages/999999999", headers=auth(key), timeout=10)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    nowhere = requests.get(f"{api}/api/v1/nowhere", headers=auth(key), timeout=10)
    assert (nowhere.status_code, nowhere.json()["error"]) == (404, "not_found")
    not_an_id = requests.get(f"{api}/api/v1/messages/abc", headers=auth(key), timeout=10)
    assert (not_an_id.status_code, not_an_id.json()["error"]) == (404, "not_found")
    assert "a message id is a whole number" in not_an_id.json()["message"]
    slash = requests.post(f"{api}/api/v1/events/", headers=auth(key), json={}, timeout=10, allow_redirects=False)
    assert (slash.status_code, slash.json()["error"]) == (404, "not_found")  # not a redirect to plain http
    assert not_an_id.headers["X-Content-Type-Options"] == "nosniff"  # once, not "nosniff, nosniff"
    no_event = requests.get(f"{api}/api/v1/messages", headers=auth(key), timeout=10)
    assert no_event.status_code == 422 and no_event.json()["errors"][0]["path"] == "event_id"


def test_the_openapi_document_is_valid_openapi_31_and_the_docs_page_renders_it(api):
    document = requests.get(f"{api}/api/v1/openapi.json", timeout=10)
    assert document.status_code == 200
    validate(document.json())  # raises on an invalid document
    assert document.json()["openapi"] == "3.1.0"
    docs = requests.get(f"{api}/api/v1/docs", timeout=10)
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert "/api/v1/events/batch" in docs.text and "MessageStatus" in docs.text
    assert "default-src 'self'" in docs.headers["content-security-policy"]
    assert requests.get(f"{api}/api/v1/static/docs.css", timeout=10).status_code == 200


def test_the_api_declares_the_notifier_queue_so_no_event_is_lost_before_the_notifier_starts(settings, key):
    with serve_api(settings) as url:
        assert post(url, key, {"event_type": "member.registered", "data": MEMBER}).status_code == 202
    assert queue_depth(settings.amqp_url, Topology.of(settings).notifier_queue) == 1


def test_the_published_json_schemas_are_served_whole_and_per_event_type_without_a_key(api):
    every = requests.get(f"{api}/api/v1/schemas", timeout=10)
    assert every.status_code == 200 and every.json() == published_schemas()
    one = requests.get(f"{api}/api/v1/schemas/payment.link_created", timeout=10)
    assert one.json() == published_schemas()["events"]["payment.link_created"]
    unknown = requests.get(f"{api}/api/v1/schemas/nobody.listens", timeout=10)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


def test_one_web_process_publishes_every_request_on_one_broker_connection(api, key, settings):
    # Given twenty events posted at once, each request by a connection of its own
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda i: post(api, key, {"event_type": "member.registered", "data": MEMBER}).status_code,
                              range(20)))
    assert codes == [202] * 20
    # Then the API opened one AMQP connection for all of them
    names = [(c.get("client_properties") or {}).get("connection_name") for c in broker_connections()]
    assert names.count(f"wanotify-api-{settings.namespace}") == 1


def broker_connections() -> list[dict[str, object]]:
    """The broker's open connections (the management API lists a new one within a few seconds)."""
    time.sleep(6)
    reply = requests.get(f"{MANAGEMENT}/connections", auth=("guest", "guest"), timeout=10)
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def test_requests_and_events_are_counted_by_route_status_and_outcome(settings, key):
    registry = CollectorRegistry()
    declare(settings)
    with serve_api(settings, registry) as url:
        post(url, key, {"event_type": "member.registered", "data": MEMBER})
        post(url, key, {"event_type": "member.registered", "data": {}})
        post(url, "wnk_nobody", {"event_type": "member.registered", "data": MEMBER})

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("wanotify_api_requests_total", route="events", status="202") == 1
    assert value("wanotify_api_requests_total", route="events", status="422") == 1
    assert value("wanotify_api_requests_total", route="events", status="401") == 1
    assert value("wanotify_api_events_total", outcome="accepted") == 1
    assert value("wanotify_api_events_total", outcome="invalid") == 1
