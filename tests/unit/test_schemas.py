"""The published schemas: equal to the code, valid by their own specifications, and in
agreement with the notifier about which events are valid."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker
from jsonschema.validators import validator_for

from wanotify.consumers.status.payload import encode, routing_key
from wanotify.consumers.status.store import OutboxRow
from wanotify.ops.cli import main
from wanotify.shared.asyncapi import DOCUMENT_PATH, asyncapi_document
from wanotify.shared.db.models import Status
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.events import SCHEMAS, decode_envelope, validate_data
from wanotify.shared.schemas import published_schemas, schema_documents
from wanotify.shared.status_events import PublishedStatus, StatusEvent

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# The AsyncAPI 3.0.0 JSON Schema from the npm package @asyncapi/specs (see its README).
ASYNCAPI_SPEC = ROOT / "tests" / "fixtures" / "asyncapi" / "3.0.0.json"

MEMBER = {"member_id": "M-1001", "name": "Budi", "phone": "08114040707"}
DATA: dict[str, dict[str, Any]] = {
    "member.registered": MEMBER,
    "payment.link_created": MEMBER | {"amount": 150000, "payment_url": "https://pay.example/x/1"},
    "payment.succeeded": MEMBER | {"amount": "150000.50"},
    "member.activated": MEMBER | {"member_id": 1001, "phone": 628114040707},  # numbers as ids and phones too
    "commission.received": MEMBER | {"amount": 2500},
    "withdrawal.requested": MEMBER | {"withdrawal_id": "W-1", "amount": 50000},
    "withdrawal.approved": MEMBER | {"withdrawal_id": 77, "amount": 50000, "bank": "extra fields are kept"},
    "withdrawal.rejected": MEMBER | {"withdrawal_id": "W-1", "amount": 50000, "reason": "limit reached"},
    "notification.requested": {"phone": "+62 811-4040-707", "template": "welcome_new_member",
                               "variables": {"name": "Budi"}, "priority": "low"},
}

# (event type, what breaks it): each is refused by the notifier and by the published schema.
INVALID: list[tuple[str, dict[str, Any]]] = [
    ("member.registered", {"data": {"member_id": "M-1", "phone": "0811"}}),  # no name
    ("member.registered", {"data": MEMBER | {"name": ""}}),
    ("member.registered", {"data": MEMBER | {"name": 42}}),
    ("member.registered", {"data": MEMBER | {"member_id": ""}}),
    ("member.registered", {"data": MEMBER | {"phone": True}}),
    ("notification.requested", {"data": {"phone": [628114040707], "template": "t"}}),
    ("payment.link_created", {"data": MEMBER | {"amount": 1, "payment_url": "ftp://x"}}),
    ("payment.succeeded", {"data": MEMBER | {"amount": -5}}),
    ("payment.succeeded", {"data": MEMBER}),  # no amount
    ("withdrawal.rejected", {"data": MEMBER | {"withdrawal_id": "W", "amount": 1}}),  # no reason
    ("notification.requested", {"data": {"phone": "0811", "template": "Bad Name"}}),
    ("notification.requested", {"data": {"phone": "0811", "template": "t", "priority": "urgent"}}),
    ("notification.requested", {"data": {"phone": "0811", "template": "t", "variables": []}}),
    ("member.registered", {"event_id": "not-a-uuid"}),
    ("member.registered", {"occurred_at": "yesterday"}),
    ("member.registered", {"source": "s" * 101}),
    ("member.registered", {"data": "not an object"}),
]


def envelope(event_type: str, **overrides: Any) -> dict[str, Any]:
    event = {"event_id": str(uuid.uuid4()), "event_type": event_type, "occurred_at": "2026-11-22T10:00:00+07:00",
             "source": "core-app", "data": copy.deepcopy(DATA[event_type])}
    return event | overrides


def notifier_accepts(event: dict[str, Any]) -> bool:
    try:
        validate_data(decode_envelope(json.dumps(event).encode()))
    except InvalidEvent:
        return False
    return True


def schema_accepts(event: dict[str, Any]) -> bool:
    schema = published_schemas()["events"][event["event_type"]]
    return Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(event)


def test_the_checked_in_files_equal_the_code() -> None:
    result = CliRunner().invoke(main, ["schemas", "export", str(DOCS), "--check"])
    assert result.exit_code == 0, f"{result.output}\nrun: wanotify schemas export docs"


def test_check_names_a_file_that_drifted_and_export_repairs_it(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["schemas", "export", str(tmp_path)]).exit_code == 0
    (tmp_path / "schemas" / "events" / "member.registered.json").write_text("{}\n")
    (tmp_path / "schemas" / "events" / "member.retired.json").write_text("{}\n")  # left by an old catalogue

    check = runner.invoke(main, ["schemas", "export", str(tmp_path), "--check"])
    assert check.exit_code == 1
    assert "schemas/events/member.registered.json (changed)" in check.output
    assert "schemas/events/member.retired.json (removed)" in check.output

    assert runner.invoke(main, ["schemas", "export", str(tmp_path)]).exit_code == 0
    assert not (tmp_path / "schemas" / "events" / "member.retired.json").exists()
    assert runner.invoke(main, ["schemas", "export", str(tmp_path), "--check"]).exit_code == 0


def test_there_is_a_schema_per_catalogue_type_plus_the_envelope_and_the_status_event() -> None:
    paths = set(schema_documents())
    assert paths == {f"schemas/events/{t}.json" for t in SCHEMAS} | {"schemas/envelope.json", "schemas/status-event.json"}
    assert set(published_schemas()["events"]) == set(SCHEMAS)


def test_the_asyncapi_document_is_valid_asyncapi_3() -> None:
    spec = json.loads(ASYNCAPI_SPEC.read_text())
    assert validator_for(spec) is Draft7Validator  # the spec schema's own declared draft
    Draft7Validator.check_schema(spec)
    document = yaml.safe_load((DOCS / DOCUMENT_PATH).read_text())
    errors = [f"{e.json_path}: {e.message}" for e in Draft7Validator(spec).iter_errors(document)]
    assert errors == []


def test_the_asyncapi_validator_does_reject_a_broken_document() -> None:
    spec = json.loads(ASYNCAPI_SPEC.read_text())
    broken = asyncapi_document()
    broken["channels"]["events"]["bindings"]["amqp"]["exchange"]["type"] = "fanfare"
    del broken["operations"]["receiveMemberRegistered"]["action"]
    assert len(list(Draft7Validator(spec).iter_errors(broken))) >= 2


def test_the_asyncapi_document_covers_both_exchanges_and_every_routing_key() -> None:
    document = asyncapi_document()
    events, status = document["channels"]["events"], document["channels"]["status"]
    assert events["address"] == "{namespace}.events" and status["address"] == "{namespace}.status"
    assert events["bindings"]["amqp"]["exchange"] == {"name": "wanotify.events", "type": "topic", "durable": True,
                                                      "autoDelete": False, "vhost": "/"}
    keys = {op["bindings"]["amqp"]["cc"][0]: op["action"] for op in document["operations"].values()}
    assert keys == {t: "receive" for t in SCHEMAS} | {f"message.{s.value}": "send" for s in PublishedStatus}


def test_every_payload_reference_names_a_published_schema_file() -> None:
    document = yaml.safe_load((DOCS / DOCUMENT_PATH).read_text())
    for channel in document["channels"].values():
        for message in channel["messages"].values():
            reference = message["payload"]["schema"]["$ref"]
            assert (DOCS / reference).is_file(), reference


@pytest.mark.parametrize("path", sorted(schema_documents()))
def test_each_json_schema_is_valid_under_the_draft_it_declares(path: str) -> None:
    schema = json.loads((DOCS / path).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:wanotify:schema:")
    validator = validator_for(schema, default=None)
    assert validator is Draft202012Validator
    validator.check_schema(schema)


def test_a_schema_that_breaks_its_draft_is_refused() -> None:
    # The check above can fail: the metaschema refuses a malformed keyword.
    schema = copy.deepcopy(schema_documents()["schemas/envelope.json"])
    schema["properties"]["event_id"]["type"] = "uuid"
    with pytest.raises(Exception, match="is not valid under any of the given schemas"):
        Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_valid_events_pass_the_schema_and_the_notifier(event_type: str) -> None:
    event = envelope(event_type)
    assert notifier_accepts(event) and schema_accepts(event)
    envelope_schema = published_schemas()["envelope"]
    assert Draft202012Validator(envelope_schema, format_checker=FormatChecker()).is_valid(event)


@pytest.mark.parametrize(("event_type", "change"), INVALID, ids=[f"{t}-{sorted(c)[0]}-{i}" for i, (t, c) in enumerate(INVALID)])
def test_invalid_events_fail_the_schema_and_the_notifier(event_type: str, change: dict[str, Any]) -> None:
    event = envelope(event_type, **change)
    assert not notifier_accepts(event), "the notifier accepts it"
    assert not schema_accepts(event), "the published schema accepts it"


def test_an_event_schema_refuses_another_types_event() -> None:
    event = envelope("member.registered")
    schema = published_schemas()["events"]["payment.succeeded"]
    assert not Draft202012Validator(schema).is_valid(event | {"event_type": "member.registered"})


def test_the_status_event_body_matches_its_schema_and_carries_no_phone() -> None:
    schema = published_schemas()["status_event"]
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    sent = StatusEvent(message_id=7, event_id=uuid.uuid4(), template="payment_success", sender="default",
                       status=PublishedStatus.SENT, at="2026-11-22T10:00:05Z")
    dead = sent.model_copy(update={"status": PublishedStatus.DEAD, "error": "131026: not a WhatsApp user", "sender": None})
    assert set(sent.body()) == {"message_id", "event_id", "template", "sender", "status", "at"}  # error only where one applies
    assert dead.body()["sender"] is None and dead.body()["error"].startswith("131026")
    assert validator.is_valid(sent.body()) and validator.is_valid(dead.body())
    assert not validator.is_valid(sent.body() | {"status": "pending"})
    assert (sent.routing_key, dead.routing_key) == ("message.sent", "message.dead")
    assert not any("phone" in name for name in schema["properties"])


def test_the_published_statuses_are_every_message_status_but_pending() -> None:
    assert {s.value for s in PublishedStatus} == {s.value for s in Status} - {"pending"}


@pytest.mark.parametrize(("status", "sender", "error"), [("queued", None, None), ("sent", "default", None),
                                                         ("dead", "promo", "131026: not a WhatsApp user")])
def test_the_relays_status_bodies_are_what_the_schema_publishes(status: str, sender: str | None, error: str | None) -> None:
    row = OutboxRow(id=1, log_id=42, event_id=str(uuid.uuid4()), template="payment_success", sender=sender,
                    status=status, error=error, at=datetime(2026, 11, 22, 10, 0, 5, 120000, tzinfo=UTC))
    body = json.loads(encode(row))
    assert Draft202012Validator(published_schemas()["status_event"], format_checker=FormatChecker()).is_valid(body)
    assert StatusEvent.model_validate(body).body() == body
    assert routing_key(row) == StatusEvent.model_validate(body).routing_key
