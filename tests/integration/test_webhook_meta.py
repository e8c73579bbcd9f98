"""What the webhook hears besides receipts, under a real uvicorn server, sent the way Meta sends it.

The user's own messages open their window and may opt them out; template and number updates
are stored. Everything is applied once: Meta's retries, duplicates and replays change nothing,
and an older update never overwrites a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client import CollectorRegistry

from tests.support.meta import empty_meta_tables, map_template, recipient, rows
from tests.support.web import SECRET, Served, add_message, receipt, serve, webhook_settings
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.ops.fake_provider.webhooks import (
    account_alert_payload,
    inbound_payload,
    number_quality_payload,
    post,
    template_quality_payload,
    template_status_payload,
)
from wanotify.ops.web.limits import Limits
from wanotify.shared import recipients
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MetaTemplate
from wanotify.shared.receipts import replay_payloads

MEMBER = "+628114040707"
LIMITS = Limits(max_concurrency=20)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def served(settings, sessions, registry) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    empty_meta_tables(sessions)
    with serve(webhook_settings(settings), LIMITS, registry) as s:
        yield s


def gauge(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def template_row(sessions, name: str = "welcome_member", language: str = "id") -> MetaTemplate | None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.get(MetaTemplate, (name, language))


def test_an_inbound_message_opens_the_members_window_and_duplicates_and_replays_change_nothing(
        served, sessions, fake_provider: FakeProviderServer):
    # Given a member who writes to us a minute ago
    wrote_at = int(time.time()) - 60
    first = fake_provider.send_inbound(served.url, SECRET, MEMBER, "Halo", message_id="wamid.in.1", at=wrote_at)
    assert (first.status, first.body["events"]) == (200, {"inbound": 1})
    opened = recipient(sessions, MEMBER)
    assert opened is not None and opened.last_inbound_at == datetime.fromtimestamp(wrote_at, UTC)
    # When Meta delivers it again, and an operator replays every payload
    again = post(served.url, SECRET, first.payload)
    assert again.body["events"] == {"duplicate_event": 1}
    [replayed] = replay_payloads(sessions, since=timedelta(hours=1))
    # Then nothing changed: the window is where the message put it, and no opt-out appeared
    assert replayed.events == {"duplicate_event": 1}
    after = recipient(sessions, MEMBER)
    assert after is not None and (after.last_inbound_at, after.opted_out_at) == (opened.last_inbound_at, None)
    assert rows(sessions, "SELECT count(*) FROM meta_event_keys") == [(1,)]


def test_an_older_message_arriving_late_never_moves_the_window_back(served, sessions, fake_provider):
    now = int(time.time())
    fake_provider.send_inbound(served.url, SECRET, MEMBER, "new", at=now - 10)
    late = fake_provider.send_inbound(served.url, SECRET, MEMBER, "old", at=now - 5000)
    assert late.body["events"] == {"inbound": 1}
    window = recipient(sessions, MEMBER)
    assert window is not None and window.last_inbound_at == datetime.fromtimestamp(now - 10, UTC)


def test_a_message_body_is_never_stored_beyond_the_raw_payload(served, sessions, fake_provider):
    fake_provider.send_inbound(served.url, SECRET, MEMBER, "my secret words")
    stored = rows(sessions, "SELECT r::text FROM recipients r") + rows(sessions, "SELECT k::text FROM meta_event_keys k")
    assert stored and not any("secret words" in row[0] for row in stored)


@pytest.mark.parametrize("reply", ["stop", "STOP", "  Berhenti \n", "berhenti"])
def test_a_stop_reply_opts_the_member_out_with_source_keyword(served, sessions, fake_provider, reply):
    delivery = fake_provider.send_inbound(served.url, SECRET, MEMBER, reply)
    assert delivery.body["events"] == {"opted_out": 1}
    member = recipient(sessions, MEMBER)
    assert member is not None and member.opted_out_at is not None and member.opt_out_source == "keyword"
    assert member.last_inbound_at is not None  # the reply was a message too


@pytest.mark.parametrize("reply", ["stop please", "STOPP", "don't stop", ""])
def test_a_reply_that_only_contains_a_keyword_does_not_opt_out(served, sessions, fake_provider, reply):
    assert fake_provider.send_inbound(served.url, SECRET, MEMBER, reply).body["events"] == {"inbound": 1}
    member = recipient(sessions, MEMBER)
    assert member is not None and member.opted_out_at is None


def test_the_opt_out_keywords_come_from_the_settings(settings, sessions, fake_provider):
    empty_meta_tables(sessions)
    with serve(webhook_settings(settings, opt_out_keywords=("UNSUBSCRIBE",)), LIMITS) as served:
        assert fake_provider.send_inbound(served.url, SECRET, MEMBER, "stop").body["events"] == {"inbound": 1}
        assert fake_provider.send_inbound(served.url, SECRET, MEMBER, "unsubscribe").body["events"] == {"opted_out": 1}


def test_a_member_opted_back_in_stays_in_when_the_old_stop_is_delivered_or_replayed_again(served, sessions, fake_provider):
    stop = fake_provider.send_inbound(served.url, SECRET, MEMBER, "STOP")
    with transaction(sessions) as session:
        assert recipients.opt_in(session, MEMBER)
    post(served.url, SECRET, stop.payload)
    replay_payloads(sessions, since=timedelta(hours=1))
    member = recipient(sessions, MEMBER)
    assert member is not None and member.opted_out_at is None


def test_receipts_in_the_same_payload_as_a_message_still_move_their_message(served, sessions, fake_provider):
    wamid = add_message(sessions)
    payload = inbound_payload(MEMBER, "ok")
    payload["entry"][0]["changes"][0]["value"]["statuses"] = receipt(wamid, "read")["entry"][0]["changes"][0]["value"]["statuses"]
    delivery = post(served.url, SECRET, payload)
    assert (delivery.body["receipts"], delivery.body["events"]) == ({"moved": 1}, {"inbound": 1})


def test_a_paused_template_is_stored_and_set_on_the_gauge_and_approval_clears_it(served, sessions, registry):
    # Given a local template mapped to the Meta template welcome_member
    map_template(sessions, "welcome_new_member", "welcome_member", "id", {"body": ["name"]})
    # When Meta pauses it
    paused = post(served.url, SECRET, template_status_payload("welcome_member", "id", "PAUSED", reason="LOW_QUALITY",
                                                              template_id=555))
    assert paused.body["events"] == {"template": 1}
    row = template_row(sessions)
    assert row is not None and (row.status, row.reason, row.meta_id) == ("PAUSED", "LOW_QUALITY", "555")
    labels = {"template": "welcome_member", "language": "id"}
    assert gauge(registry, "wanotify_meta_template_status", **labels, status="PAUSED") == 1
    assert gauge(registry, "wanotify_meta_templates_not_approved") == 1
    # Then approving it again clears the alert's series
    post(served.url, SECRET, template_status_payload("welcome_member", "id", "APPROVED", template_id=555))
    row = template_row(sessions)
    assert row is not None and (row.status, row.reason) == ("APPROVED", None)
    assert gauge(registry, "wanotify_meta_template_status", **labels, status="PAUSED") is None
    assert gauge(registry, "wanotify_meta_template_status", **labels, status="APPROVED") == 1
    assert gauge(registry, "wanotify_meta_templates_not_approved") == 0


def test_an_older_template_update_arriving_late_does_not_overwrite_a_newer_one(served, sessions):
    now = int(time.time())
    post(served.url, SECRET, template_status_payload("welcome_member", "id", "PAUSED", at=now))
    late = post(served.url, SECRET, template_status_payload("welcome_member", "id", "APPROVED", at=now - 600))
    assert late.body["events"] == {"stale_update": 1}
    row = template_row(sessions)
    assert row is not None and row.status == "PAUSED"


def test_template_updates_without_a_time_apply_in_arrival_order_even_when_equal_to_an_earlier_one(served, sessions):
    for event in ("PAUSED", "APPROVED", "PAUSED"):
        payload = template_status_payload("welcome_member", "id", event)
        del payload["entry"][0]["time"]
        payload["entry"][0]["id"] = f"{payload['entry'][0]['id']}-{event}-{time.monotonic_ns()}"  # distinct bodies
        assert post(served.url, SECRET, payload).body["events"] == {"template": 1}
    row = template_row(sessions)
    assert row is not None and row.status == "PAUSED"


def test_a_template_quality_update_sets_the_quality_and_keeps_the_status(served, sessions):
    post(served.url, SECRET, template_status_payload("welcome_member", "id", "APPROVED"))
    post(served.url, SECRET, template_quality_payload("welcome_member", "id", "RED"))
    row = template_row(sessions)
    assert row is not None and (row.status, row.quality) == ("APPROVED", "RED")


def test_a_flagged_number_and_a_lowered_limit_are_kept_shown_on_gauges_and_recorded_once(served, sessions, registry):
    now = int(time.time())
    flagged = post(served.url, SECRET, number_quality_payload("FLAGGED", "TIER_10K", at=now - 60))
    lowered = post(served.url, SECRET, number_quality_payload("DOWNGRADE", "TIER_1K", old_limit="TIER_10K", at=now))
    assert flagged.body["events"] == lowered.body["events"] == {"account": 1}
    assert rows(sessions, "SELECT phone_number, quality, messaging_limit, limit_lowered, last_event "
                          "FROM phone_number_state") == [("15550783881", "FLAGGED", "TIER_1K", True, "DOWNGRADE")]
    assert gauge(registry, "wanotify_meta_phone_numbers", quality="FLAGGED") == 1
    assert gauge(registry, "wanotify_meta_messaging_limit_lowered") == 1
    # A retry of either adds no second event
    post(served.url, SECRET, flagged.payload)
    replay_payloads(sessions, since=timedelta(hours=1))
    assert rows(sessions, "SELECT field, event FROM account_events ORDER BY id") == [
        ("phone_number_quality_update", "FLAGGED"), ("phone_number_quality_update", "DOWNGRADE")]
    # And a raise clears the lowered limit
    post(served.url, SECRET, number_quality_payload("UPGRADE", "TIER_10K", at=now + 60))
    assert gauge(registry, "wanotify_meta_messaging_limit_lowered") == 0


def test_an_older_number_update_is_recorded_but_does_not_overwrite_the_state(served, sessions):
    now = int(time.time())
    post(served.url, SECRET, number_quality_payload("UNFLAGGED", "TIER_10K", at=now))
    late = post(served.url, SECRET, number_quality_payload("FLAGGED", "TIER_1K", at=now - 3600))
    assert late.body["events"] == {"stale_update": 1}
    assert rows(sessions, "SELECT quality, messaging_limit FROM phone_number_state") == [("UNFLAGGED", "TIER_10K")]
    assert rows(sessions, "SELECT count(*) FROM account_events") == [(2,)]


def test_an_account_alert_is_kept_as_an_account_event(served, sessions):
    delivery = post(served.url, SECRET, account_alert_payload("OBA_REJECTED", "The official badge was rejected"))
    assert delivery.body["events"] == {"account": 1}
    [(field, event, description)] = rows(
        sessions, "SELECT field, event, detail->'alert_info'->>'alert_description' FROM account_events")
    assert (field, event, description) == ("account_alerts", "OBA_REJECTED", "The official badge was rejected")


def test_the_webhook_counts_what_other_changes_did(served, registry, fake_provider):
    fake_provider.send_inbound(served.url, SECRET, MEMBER, "hi")
    fake_provider.send_inbound(served.url, SECRET, MEMBER, "stop")
    assert gauge(registry, "wanotify_webhook_events_total", outcome="inbound") == 1
    assert gauge(registry, "wanotify_webhook_events_total", outcome="opted_out") == 1


def test_the_fakes_control_api_sends_signed_webhooks_for_tests_in_other_processes(served, sessions, fake_provider):
    inbound = requests.post(f"{fake_provider.url}/_fake/webhooks/inbound", timeout=10,
                            json={"url": served.url, "secret": SECRET, "phone": MEMBER, "text": "BERHENTI"})
    assert inbound.json() == {"ok": True, "status": 200, "answer": inbound.json()["answer"]}
    assert inbound.json()["answer"]["events"] == {"opted_out": 1}
    status = requests.post(f"{fake_provider.url}/_fake/webhooks/template-status", timeout=10,
                           json={"url": served.url, "secret": SECRET, "name": "welcome_member", "language": "id",
                                 "event": "DISABLED"})
    assert status.json()["answer"]["events"] == {"template": 1}
    row = template_row(sessions)
    assert row is not None and row.status == "DISABLED"
    wrong = requests.post(f"{fake_provider.url}/_fake/webhooks/inbound", timeout=10,
                          json={"url": served.url, "secret": "not-the-secret", "phone": MEMBER})
    assert wrong.json()["status"] == 403
    assert requests.post(f"{fake_provider.url}/_fake/webhooks/inbound", json={"url": served.url},
                         timeout=10).status_code == 400
