"""What an event becomes: messages, or a park reason a human can act on."""

from __future__ import annotations

import json

import pytest

from tests.unit.catalog import seeded_catalog
from wanotify.consumers.notifier.planning import plan_event
from wanotify.shared.events import MAX_EVENT_BYTES, build_envelope
from wanotify.shared.templates import SAMPLE_VARIABLES, render

CATALOG = seeded_catalog()
MEMBER = {"member_id": "M-1", "name": "Budi", "phone": "08114040707"}


def encode(event_type: str, data: dict, **extra: object) -> bytes:  # type: ignore[type-arg]
    return json.dumps(build_envelope(event_type, data) | extra).encode()


def test_a_registration_becomes_a_normal_priority_welcome_to_an_e164_number():
    plan = plan_event(encode("member.registered", MEMBER), CATALOG, "ID")
    assert plan.parked is None
    [message] = plan.messages
    assert (message.template, message.priority, message.recipient) == ("welcome_new_member", "normal", "+628114040707")
    assert "Budi" in message.body and "M-1" in message.body


@pytest.mark.parametrize("phone", ["08114040707", "628114040707", "+62 811-4040-707", "0062 811 4040 707"])
def test_usual_phone_forms_are_accepted(phone):
    plan = plan_event(encode("member.registered", MEMBER | {"phone": phone}), CATALOG, "ID")
    assert plan.messages[0].recipient == "+628114040707"


@pytest.mark.parametrize("event_type", ["member.registered", "notification.requested"])
def test_a_phone_sent_as_a_json_number_is_accepted_like_a_numeric_member_id(event_type):
    data = {"member_id": 1001, "name": "Budi"} if event_type == "member.registered" else {
        "template": "test_message", "variables": {"sent_at": "now"}}
    plan = plan_event(encode(event_type, data | {"phone": 628114040707}), CATALOG, "ID")
    assert plan.parked is None and plan.messages[0].recipient == "+628114040707"


@pytest.mark.parametrize("phone", [True, 628114040707.0, [628114040707]])
def test_a_phone_that_is_neither_text_nor_a_whole_number_is_invalid_data(phone):
    plan = plan_event(encode("member.registered", MEMBER | {"phone": phone}), CATALOG, "ID")
    assert plan.parked is not None and plan.parked.reason == "invalid_data" and "phone" in plan.parked.detail


def nested(lists: int) -> str:
    return "[" * lists + "]" * lists


@pytest.mark.parametrize(("event_type", "data", "lists"), [
    ("member.registered", MEMBER | {"extra": "DEEP"}, 31),  # the event, its data, 31 lists: 33 levels
    ("member.registered", MEMBER | {"extra": "DEEP"}, 3000),  # too deep for Python's own JSON parser
    ("notification.requested", {"phone": "08114040707", "template": "test_message",
                                "variables": {"sent_at": "now", "x": "DEEP"}}, 900),
])
def test_an_event_nested_deeper_than_the_limit_is_invalid_data_before_anything_recurses_into_it(event_type, data, lists):
    body = encode(event_type, data).replace(b'"DEEP"', nested(lists).encode())
    plan = plan_event(body, CATALOG, "ID")
    assert plan.parked is not None and not plan.messages
    assert plan.parked.reason == "invalid_data"
    assert plan.parked.detail.endswith("nests objects and arrays deeper than 32 levels")


def test_an_event_nested_exactly_to_the_limit_is_accepted():
    body = encode("member.registered", MEMBER | {"extra": "DEEP"}).replace(b'"DEEP"', nested(30).encode())
    plan = plan_event(body, CATALOG, "ID")
    assert plan.parked is None and plan.messages


def test_a_template_renders_occurred_at_on_sample_data_as_on_a_real_event():
    # What `templates set` checks and `templates preview` shows is what the member will read
    body = "{{ occurred_at }} | {{ occurred_at.strftime('%d/%m/%Y') }}"
    catalog = seeded_catalog(welcome_new_member=body)
    [message] = plan_event(encode("member.registered", MEMBER, occurred_at="2026-11-22T10:00:00Z"), catalog, "ID").messages
    assert message.body == render(body, SAMPLE_VARIABLES) == "2026-11-22 10:00:00+00:00 | 22/11/2026"


def test_a_payment_link_is_high_priority_and_formats_the_amount():
    data = MEMBER | {"amount": "1500000", "payment_url": "https://pay.example.com/x"}
    [message] = plan_event(encode("payment.link_created", data), CATALOG, "ID").messages
    assert message.priority == "high" and "1.500.000" in message.body and "https://pay.example.com/x" in message.body


def test_notification_requested_uses_the_named_template_and_priority():
    data = {"phone": "08114040707", "template": "test_message", "priority": "low", "variables": {"sent_at": "now"}}
    [message] = plan_event(encode("notification.requested", data), CATALOG, "ID").messages
    assert (message.template, message.priority) == ("test_message", "low") and "(now)" in message.body


def test_unknown_extra_fields_are_ignored():
    plan = plan_event(encode("member.registered", MEMBER | {"extra": 1}, also="x"), CATALOG, "ID")
    assert plan.parked is None and len(plan.messages) == 1


def _reason(body: bytes, catalog=CATALOG) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    plan = plan_event(body, catalog, "ID")
    assert plan.parked is not None and not plan.messages
    return plan.parked.reason, plan.parked.detail


@pytest.mark.parametrize(("body", "reason", "says"), [
    (b"not json at all", "not_json", "not JSON"),
    (b"\xff\xfe{}", "not_utf8", "UTF-8"),
    (b"[1, 2]", "not_object", "list"),
    (b'{"event_type": "member.registered"}', "invalid_envelope", "event_id"),
    (b'{"event_id": "x", "event_type": "member.registered", "occurred_at": "2026-01-01T00:00:00Z", "data": {}}',
     "invalid_envelope", "event_id"),
    (json.dumps({"event_id": "6f1c2d3e-8a9b-4c5d-9e0f-112233445566", "event_type": "member.registered",
                 "occurred_at": "2026-01-01T00:00:00", "data": {}}).encode(), "invalid_envelope", "timezone"),
    (b'{"x": NaN}', "not_json", "NaN"),
])
def test_malformed_events_are_parked_with_a_clear_reason(body, reason, says):
    got, detail = _reason(body)
    assert got == reason
    assert says.lower() in detail.lower()


@pytest.mark.parametrize(("fields", "event_id", "event_type"), [
    ({"occurred_at": "2026-11-22T10:00:00"}, "6f1c2d3e-8a9b-4c5d-9e0f-112233445566", "member.registered"),
    ({"data": "not an object"}, "6f1c2d3e-8a9b-4c5d-9e0f-112233445566", "member.registered"),
    ({"event_id": "6F1C2D3E8A9B4C5D9E0F112233445566", "occurred_at": None}, "6f1c2d3e-8a9b-4c5d-9e0f-112233445566",
     "member.registered"),
    ({"event_id": "x", "occurred_at": None}, None, "member.registered"),
    ({"event_id": 12, "event_type": "Member Registered"}, None, None),
    ({"event_id": ["6f1c2d3e-8a9b-4c5d-9e0f-112233445566"], "event_type": None}, None, None),
])
def test_an_event_refused_at_its_envelope_keeps_the_id_and_type_it_gave_if_they_are_valid(fields, event_id, event_type):
    # so `dead show` names the event and its copy on the dead queue keeps the event's id
    envelope = build_envelope("member.registered", MEMBER, event_id="6f1c2d3e-8a9b-4c5d-9e0f-112233445566") | fields
    parked = plan_event(json.dumps(envelope).encode(), CATALOG, "ID").parked
    assert parked is not None and parked.reason == "invalid_envelope"
    assert (parked.event_id, parked.event_type) == (event_id, event_type)


def test_an_oversized_event_is_parked_before_it_is_parsed():
    body = encode("member.registered", MEMBER | {"name": "x" * MAX_EVENT_BYTES})
    assert _reason(body)[0] == "too_large"


def test_missing_and_mistyped_data_fields_are_named_in_the_reason():
    reason, detail = _reason(encode("payment.link_created", {"member_id": "M-1", "name": "B", "phone": "0811404070",
                                                            "amount": "lots"}))
    assert reason == "invalid_data" and "amount" in detail and "payment_url" in detail


def test_an_event_type_without_a_rule_is_parked_as_unknown():
    assert _reason(encode("member.deleted", MEMBER))[0] == "unknown_type"


@pytest.mark.parametrize("phone", ["12", "not a phone", "+999 123", "0811"])
def test_an_invalid_phone_is_parked_with_the_number_masked(phone):
    reason, detail = _reason(encode("member.registered", MEMBER | {"phone": phone}))
    assert reason == "invalid_phone"
    assert not any(ch.isdigit() for ch in detail.rsplit(": ", 1)[1])  # short numbers are masked entirely


def test_a_template_missing_a_variable_is_parked_not_sent_with_a_gap():
    catalog = seeded_catalog(welcome_new_member="Halo {{ nickname }}")
    reason, detail = _reason(encode("member.registered", MEMBER), catalog)
    assert reason == "template_error" and "nickname" in detail


def test_a_template_that_tries_to_escape_the_sandbox_is_parked():
    catalog = seeded_catalog(welcome_new_member="{{ ''.__class__.__mro__ }}")
    reason, detail = _reason(encode("member.registered", MEMBER), catalog)
    assert reason == "template_error" and "unsafe" in detail


def test_a_template_that_would_exhaust_memory_is_parked():
    catalog = seeded_catalog(welcome_new_member="{{ 'a' * 1000000000 }}")
    assert _reason(encode("member.registered", MEMBER), catalog)[0] == "template_error"


def test_a_rule_naming_a_missing_template_is_parked_as_template_missing():
    catalog = seeded_catalog()
    del catalog.templates["welcome_new_member"]
    assert _reason(encode("member.registered", MEMBER), catalog)[0] == "template_missing"
