"""The HTTP API's pieces that need no server: the token bucket, the bearer header, event checks, the documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from openapi_spec_validator import validate

from wanotify.ops.admin.api_keys import KEY_PREFIX, hash_key, new_key
from wanotify.ops.web.api.auth import bearer_key
from wanotify.ops.web.api.docs import _type_of, page
from wanotify.ops.web.api.errors import ApiError, retry_after
from wanotify.ops.web.api.openapi import document
from wanotify.ops.web.api.ratelimit import RateLimiter
from wanotify.ops.web.api.services import KnownTypes
from wanotify.ops.web.api.validation import Checks, check_event, parse_json
from wanotify.ops.web.app import select_parts
from wanotify.shared.errors import ConfigError
from wanotify.shared.events import MAX_EVENT_BYTES, SCHEMAS

CHECKS = Checks(frozenset(SCHEMAS) | {"order.shipped"}, "ID", datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
MEMBER = {"member_id": 7, "name": "Budi", "phone": "+62 811-4040-707"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_one_token_per_interval_and_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(1) == pytest.approx(0.5)  # refused: nothing spent
    clock.now = 0.5
    assert limiter.take(1) == 0.0 and limiter.take(1) == pytest.approx(0.5)


def test_each_key_has_its_own_bucket_and_a_cost_above_the_burst_waits_for_a_full_bucket():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert limiter.take(1, cost=2) == 0.0 and limiter.take(1) > 0
    assert limiter.take(2) == 0.0  # another key is not slowed
    clock.now = 2.0
    assert limiter.take(1, cost=500) == 0.0  # a batch larger than the burst costs the whole burst


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one():
    assert [retry_after(s) for s in (0.01, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "Token wnk_x"])
def test_anything_but_a_bearer_key_is_refused_with_401(header):
    with pytest.raises(ApiError) as refused:
        bearer_key(header)
    assert refused.value.status == 401 and "WWW-Authenticate" in refused.value.headers


def test_a_bearer_key_is_read_whatever_the_scheme_case_and_keys_are_long_prefixed_and_distinct():
    assert bearer_key("bearer  wnk_abc ") == "wnk_abc"
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith(KEY_PREFIX) and len(k) >= 40 for k in keys)
    assert len(hash_key("wnk_abc")) == 64


def test_a_valid_event_gets_an_id_and_the_time_of_receipt_and_keeps_its_own_fields():
    checked = check_event({"event_type": "member.registered", "source": "crm", "data": MEMBER}, CHECKS)
    assert checked.errors == [] and checked.event is not None
    body = parse_json(checked.event.body)
    assert body["event_id"] == checked.event.event_id and body["occurred_at"] == "2026-11-25T08:00:00Z"
    assert body["data"] == MEMBER and body["source"] == "crm"


def test_a_type_outside_the_catalogue_that_a_rule_names_needs_only_a_phone():
    assert check_event({"event_type": "order.shipped", "data": {"phone": "08114040707"}}, CHECKS).errors == []
    [error] = check_event({"event_type": "order.shipped", "data": {}}, CHECKS).errors
    assert error["path"] == "data.phone"


def test_every_bad_field_is_named_with_its_path_prefixed_in_a_batch():
    checked = check_event({"event_id": "x", "event_type": "Member", "data": {}}, CHECKS, "events.4")
    assert {e["path"] for e in checked.errors} == {"events.4.event_id", "events.4.event_type"}
    data = check_event({"event_type": "withdrawal.rejected", "data": {**MEMBER, "amount": -1}}, CHECKS).errors
    assert {e["path"] for e in data} == {"data.amount", "data.withdrawal_id", "data.reason"}


def test_an_event_too_large_for_the_notifier_is_refused_before_it_is_published():
    big = {"event_type": "member.registered", "data": {**MEMBER, "note": "x" * MAX_EVENT_BYTES}}
    [error] = check_event(big, CHECKS).errors
    assert "limit" in error["message"]


def test_an_event_nested_deeper_than_the_notifier_takes_is_refused_before_it_is_published():
    deep: list = []  # type: ignore[type-arg]
    for _ in range(30):  # the event, its data, 31 lists: 33 levels
        deep = [deep]
    [error] = check_event({"event_type": "member.registered", "data": {**MEMBER, "x": deep}}, CHECKS).errors
    assert error == {"path": "data", "message": "member.registered data nests objects and arrays deeper than 32 levels"}
    assert check_event({"event_type": "member.registered", "data": {**MEMBER, "x": deep[0]}}, CHECKS).errors == []


def test_a_body_nested_too_deep_to_parse_is_a_400_that_says_so():
    with pytest.raises(ApiError) as refused:
        parse_json(b'{"x": ' + b"[" * 3000 + b"]" * 3000 + b"}")
    assert (refused.value.status, refused.value.code) == (400, "not_json")
    assert refused.value.message == "the body nests objects and arrays deeper than 32 levels"


@pytest.mark.parametrize("body", [b"{", b"\xff", b"NaN", b"[" * 100_000])
def test_a_body_that_is_not_json_is_a_400(body):
    with pytest.raises(ApiError) as refused:
        parse_json(body)
    assert (refused.value.status, refused.value.code) == (400, "not_json")


def test_the_known_event_types_are_read_again_once_their_time_is_up():
    clock = Clock()
    known = KnownTypes(cache_seconds=10, clock=clock)
    assert known.fresh() is None
    known.remember(frozenset({"a.b"}))
    assert known.fresh() == {"a.b"}
    clock.now = 10.0
    assert known.fresh() is None


def test_the_openapi_document_is_valid_and_has_a_schema_for_every_catalogue_type():
    spec = document()
    validate(spec)
    assert {m.__name__ for m in SCHEMAS.values()} <= set(spec["components"]["schemas"])
    assert set(spec["paths"]) == {"/api/v1/events", "/api/v1/events/batch", "/api/v1/messages", "/api/v1/messages/{id}",
                                  "/api/v1/schemas", "/api/v1/schemas/{event_type}"}


def test_the_docs_page_names_every_endpoint_and_schema_and_reads_types_shortly():
    html = page()
    assert all(path in html for path in document()["paths"])
    assert "WithdrawalRejectedData" in html
    assert _type_of({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}) == "string (uuid) or null"
    assert _type_of({"type": "array", "items": {"$ref": "#/components/schemas/Receipt"}}) == "list of Receipt"


def test_the_api_is_a_part_that_only_can_pick_and_the_console_still_comes_last():
    assert select_parts("console,api,webhook") == ("webhook", "api", "console")
    assert select_parts("api") == ("api",)
    with pytest.raises(ConfigError, match="available parts: webhook, api, console"):
        select_parts("apis")
