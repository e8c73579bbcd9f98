"""Reading what Meta's webhook says besides receipts: messages, template and number updates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from wanotify.ops.fake_provider.webhooks import (
    account_alert_payload,
    envelope,
    inbound_payload,
    number_quality_payload,
    template_quality_payload,
    template_status_payload,
)
from wanotify.shared.meta_payloads import parse_changes, wa_id_to_e164
from wanotify.shared.metrics import MetaStateMetrics


def test_an_inbound_text_message_gives_the_sender_as_e164_its_time_and_its_text():
    changes = parse_changes(inbound_payload("+628114040707", "Halo", message_id="wamid.A", at=1763800000), "1")
    [message] = changes.inbound
    assert (message.message_id, message.phone, message.text) == ("wamid.A", "+628114040707", "Halo")
    assert message.at == datetime(2025, 11, 22, 8, 26, 40, tzinfo=UTC)
    assert not changes.templates and not changes.account


def test_a_non_text_message_opens_the_window_but_carries_no_text_and_a_system_message_is_not_the_user():
    image = parse_changes(inbound_payload("628114040707", None, kind="image"), "1").inbound
    assert len(image) == 1 and image[0].text is None
    assert parse_changes(inbound_payload("628114040707", None, kind="system"), "1").inbound == []


@pytest.mark.parametrize("item", [
    {"id": "wamid.x", "timestamp": "1763800000", "type": "text"},                      # no sender
    {"from": "62abc", "id": "wamid.x", "timestamp": "1763800000", "type": "text"},     # not digits
    {"from": "628114040707", "timestamp": "1763800000", "type": "text"},               # no id
    {"from": "628114040707", "id": "wamid.x", "timestamp": "soon", "type": "text"},    # no usable time
    "not an object",
])
def test_a_malformed_message_is_skipped_not_an_error(item: Any):
    assert parse_changes(envelope("messages", {"messages": [item]}), "1").inbound == []


@pytest.mark.parametrize("payload", [None, [], {"entry": "x"}, {"entry": [{"changes": [{"field": "messages"}]}]},
                                     {"entry": [{"changes": [{"field": 3, "value": {}}]}]}])
def test_payloads_of_any_shape_parse_to_nothing_rather_than_fail(payload: Any):
    assert not parse_changes(payload, "1")


def test_a_template_status_update_carries_status_reason_id_and_the_entry_time():
    [update] = parse_changes(template_status_payload("welcome", "id", "PAUSED", reason="LOW_QUALITY",
                                                     template_id=77, at=1763800000), "1").templates
    assert (update.name, update.language, update.status, update.reason, update.meta_id) == (
        "welcome", "id", "PAUSED", "LOW_QUALITY", "77")
    assert update.at == datetime.fromtimestamp(1763800000, UTC) and update.quality is None


def test_meta_s_none_reason_on_approval_is_no_reason():
    [update] = parse_changes(template_status_payload("welcome", "id", "APPROVED"), "1").templates
    assert update.reason is None


def test_a_template_quality_update_carries_only_the_quality():
    [update] = parse_changes(template_quality_payload("welcome", "id", "RED"), "1").templates
    assert (update.quality, update.status) == ("RED", None)


def test_the_same_update_twice_has_one_key_and_a_timeless_one_is_keyed_by_its_payload():
    first = parse_changes(template_status_payload("w", "id", "PAUSED", at=100), "1").templates[0]
    again = parse_changes(template_status_payload("w", "id", "PAUSED", at=100), "2").templates[0]
    later = parse_changes(template_status_payload("w", "id", "PAUSED", at=101), "1").templates[0]
    assert first.key == again.key != later.key
    timeless = template_status_payload("w", "id", "PAUSED")
    del timeless["entry"][0]["time"]
    assert parse_changes(timeless, "1").templates[0].key != parse_changes(timeless, "2").templates[0].key


@pytest.mark.parametrize(("event", "quality", "lowered"), [
    ("FLAGGED", "FLAGGED", None), ("UNFLAGGED", "UNFLAGGED", None), ("DOWNGRADE", None, True), ("UPGRADE", None, False),
])
def test_a_number_update_says_its_quality_limit_and_whether_the_limit_went_down(event, quality, lowered):
    [update] = parse_changes(number_quality_payload(event, "TIER_1K"), "1").account
    assert (update.field, update.event, update.phone_number) == ("phone_number_quality_update", event, "15550783881")
    assert (update.quality, update.messaging_limit, update.limit_lowered) == (quality, "TIER_1K", lowered)


def test_an_account_alert_is_kept_with_its_type():
    [update] = parse_changes(account_alert_payload("OBA_REJECTED", "Official badge rejected"), "1").account
    assert (update.field, update.event, update.phone_number) == ("account_alerts", "OBA_REJECTED", None)
    assert update.detail["alert_info"]["alert_description"] == "Official badge rejected"


def test_wa_ids_become_e164_and_anything_else_nothing():
    assert wa_id_to_e164("628114040707") == "+628114040707"
    assert [wa_id_to_e164(x) for x in ("", "123", "+62811", True, None, "1" * 16)] == [None] * 6


def test_the_meta_gauges_follow_the_states_and_drop_series_that_are_no_longer_true():
    registry = CollectorRegistry()
    gauges = MetaStateMetrics(registry)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    template = {"meta_name": "welcome", "language": "id", "status": "PAUSED"}
    gauges.update([template], [{"quality": "FLAGGED", "limit_lowered": True}])
    assert value("wanotify_meta_template_status", template="welcome", language="id", status="PAUSED") == 1
    assert value("wanotify_meta_templates_not_approved") == 1
    assert value("wanotify_meta_phone_numbers", quality="FLAGGED") == 1
    assert value("wanotify_meta_messaging_limit_lowered") == 1
    gauges.update([{**template, "status": "APPROVED"}], [{"quality": "GREEN", "limit_lowered": False}])
    assert value("wanotify_meta_template_status", template="welcome", language="id", status="PAUSED") is None
    assert value("wanotify_meta_template_status", template="welcome", language="id", status="APPROVED") == 1
    assert value("wanotify_meta_templates_not_approved") == 0
    assert value("wanotify_meta_phone_numbers", quality="FLAGGED") == 0
    assert value("wanotify_meta_messaging_limit_lowered") == 0
    gauges.update([{**template, "status": "weird status!"}], [])
    assert value("wanotify_meta_template_status", template="welcome", language="id", status="OTHER") == 1
