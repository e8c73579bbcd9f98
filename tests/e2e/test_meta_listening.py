"""What wanotify hears from Meta, run as a user runs it: ``run web`` receiving the webhooks the fake
provider sends like Meta would, ``status``, ``optouts`` and ``templates sync`` as commands."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.graph_api import TOKEN, WABA_ID, graph_api
from tests.support.meta import empty_meta_tables, map_template, recipient
from tests.support.processes import Proc, run_wanotify, wait_until, wanotify_env
from tests.support.web import SECRET
from tests.support.web import TOKEN as VERIFY_TOKEN
from wanotify.ops.fake_provider.webhooks import number_quality_payload, post
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MetaTemplate

MEMBER = "+628114040707"
MASKED = "6281******07"


def env(settings: Settings, **extra: object) -> dict[str, str]:
    return wanotify_env(settings, "http://127.0.0.1:1", WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, WHATSAPP_APP_SECRET=SECRET,
                        **extra)


def wanotify(settings: Settings, *args: str, **extra: object) -> subprocess.CompletedProcess[str]:
    return run_wanotify(args, env(settings, **extra))


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert (done.stdout, done.stderr.count("\n")) == ("", 1), done.stdout + done.stderr
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
    return done.stderr.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def web(settings: Settings, sessions) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    empty_meta_tables(sessions)
    metrics_port = free_port()
    proc = Proc(["run", "web", "--only", "webhook", "--port", "0"], env(settings, METRICS_PORT=metrics_port),
                ready="web: serving", name="web")
    try:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", proc.log())
        assert match, proc.log()
        yield {"url": f"{match[1]}/webhooks/whatsapp", "metrics": f"http://127.0.0.1:{metrics_port}/metrics"}
    finally:
        proc.close()


def metric_lines(url: str, name: str) -> list[str]:
    return [line for line in requests.get(url, timeout=5).text.splitlines() if line.startswith(name)]


def test_a_members_message_through_run_web_opens_their_window_once(settings, web, sessions, fake_provider):
    # Given the real web server, and the fake provider playing Meta
    wrote_at = int(time.time()) - 30
    delivery = fake_provider.send_inbound(web["url"], SECRET, MEMBER, "Halo", message_id="wamid.e2e.1", at=wrote_at)
    # Then the member's window is open from the moment they wrote
    assert (delivery.status, delivery.body["events"]) == (200, {"inbound": 1})
    first = recipient(sessions, MEMBER)
    assert first is not None and first.last_inbound_at is not None
    assert int(first.last_inbound_at.timestamp()) == wrote_at
    # And Meta's retry of it, and an operator's replay of every payload, change nothing
    assert post(web["url"], SECRET, delivery.payload).body["events"] == {"duplicate_event": 1}
    replayed = wanotify(settings, "webhooks", "replay", "--since", "1h", "--json")
    assert json.loads(replayed.stdout) == [{"id": json.loads(replayed.stdout)[0]["id"], "receipts": {},
                                            "events": {"duplicate_event": 1}}]
    again = recipient(sessions, MEMBER)
    assert again is not None and (again.last_inbound_at, again.opted_out_at) == (first.last_inbound_at, None)


def test_a_stop_reply_opts_out_and_the_optouts_commands_list_and_remove_it(settings, web, sessions, fake_provider):
    # Given a member who replies STOP
    assert fake_provider.send_inbound(web["url"], SECRET, MEMBER, "stop").body["events"] == {"opted_out": 1}
    # Then optouts list shows them, masked, with the source keyword
    listed = json.loads(wanotify(settings, "optouts", "list", "--json").stdout)
    assert [(row["phone"], row["source"]) for row in listed] == [(MASKED, "keyword")]
    text = wanotify(settings, "optouts", "list").stdout
    assert MASKED in text and "keyword" in text and "8114040707" not in text
    # When an operator removes the opt-out, given the number in a local form
    removed = wanotify(settings, "optouts", "remove", "0811-4040-707")
    assert (removed.returncode, removed.stdout.strip()) == (0, f"opted in again {MASKED}")
    assert json.loads(wanotify(settings, "optouts", "list", "--json").stdout) == []
    # And removing it again says why not, in one line
    assert "has not opted out" in one_error_line(wanotify(settings, "optouts", "remove", MEMBER))


def test_optouts_add_takes_any_phone_form_and_a_reason_and_refuses_an_invalid_number(settings, sessions):
    empty_meta_tables(sessions)
    for phone in ("0062 811 4040 707", "628114040707"):
        assert wanotify(settings, "optouts", "add", phone, "--reason", "asked by phone").returncode == 0
    [row] = json.loads(wanotify(settings, "optouts", "list", "--json").stdout)
    assert (row["phone"], row["source"], row["reason"]) == (MASKED, "cli", "asked by phone")
    bad = wanotify(settings, "optouts", "add", "12")
    assert bad.returncode == 2 and "not a valid phone number" in bad.stderr and "Traceback" not in bad.stderr


def test_a_paused_template_shows_on_run_webs_metrics_and_in_status_until_approved(settings, web, sessions, fake_provider):
    # Given a local template mapped to an approved Meta template, and a number Meta flagged
    map_template(sessions, "welcome_new_member", "welcome_member", "id", {"body": ["{{ name }}", "{{ member_id }}"]})
    post(web["url"], SECRET, number_quality_payload("FLAGGED", "TIER_1K"))
    # When Meta pauses the template
    paused = fake_provider.send_template_status(web["url"], SECRET, "welcome_member", "id", "PAUSED",
                                                reason="LOW_QUALITY")
    assert paused.body["events"] == {"template": 1}
    # Then run web's metrics say so, and so does status (text and JSON)
    series = 'wanotify_meta_template_status{language="id",status="PAUSED",template="welcome_member"} 1.0'
    assert series in metric_lines(web["metrics"], "wanotify_meta_template_status")
    assert 'wanotify_meta_phone_numbers{quality="FLAGGED"} 1.0' in metric_lines(web["metrics"], "wanotify_meta_phone")
    status = json.loads(wanotify(settings, "status", "--json").stdout)["meta"]
    assert [(t["template"], t["status"], t["reason"]) for t in status["templates_not_approved"]] == [
        ("welcome_new_member", "PAUSED", "LOW_QUALITY")]
    assert [(n["quality"], n["messaging_limit"]) for n in status["numbers"]] == [("FLAGGED", "TIER_1K")]
    text = wanotify(settings, "status").stdout
    assert "welcome_new_member: welcome_member (id) PAUSED — LOW_QUALITY" in text
    assert "quality FLAGGED, messaging limit TIER_1K" in text
    # When Meta approves it again, the paused series is gone
    fake_provider.send_template_status(web["url"], SECRET, "welcome_member", "id", "APPROVED")
    lines = metric_lines(web["metrics"], "wanotify_meta_template_status")
    assert series not in lines and series.replace("PAUSED", "APPROVED") in lines
    assert json.loads(wanotify(settings, "status", "--json").stdout)["meta"]["templates_not_approved"] == []


def sync_env() -> dict[str, Any]:
    return {"WHATSAPP_WABA_ID": WABA_ID, "WHATSAPP_ACCESS_TOKEN": TOKEN}


def test_templates_sync_reports_each_mismatch_and_exits_1_and_a_clean_account_exits_0(settings, sessions):
    empty_meta_tables(sessions)
    with graph_api() as graph:
        # Given mappings that disagree with the account: missing, another language, a count, a status
        map_template(sessions, "account_activated", "account_active", "id", {"body": ["{{ name }}"]})
        map_template(sessions, "commission_received", "commission_received", "id", {"body": ["{{ name }}", "x"]})
        map_template(sessions, "welcome_new_member", "welcome_member", "id", {"body": ["{{ name }}"]})
        map_template(sessions, "payment_success", "payment_success", "id", {"body": ["{{ name }}", "{{ amount }}"]})
        done = wanotify(settings, "templates", "sync", WHATSAPP_API_BASE_URL=graph.url, **sync_env())
        assert done.returncode == 1, done.stderr
        assert done.stdout.splitlines() == [
            "5 template(s) in the account; 4 mismatch(es):",
            "  - account_activated: the account has no template named account_active",
            "  - commission_received: the account has commission_received in en_US, not in id",
            "  - payment_success: payment_success (id) is PAUSED, not APPROVED: Meta will not deliver it",
            "  - welcome_new_member: welcome_member (id) body has 2 parameters ({{1}}, {{2}}), the mapping fills 1",
        ]
        as_json = json.loads(wanotify(settings, "templates", "sync", "--json", WHATSAPP_API_BASE_URL=graph.url,
                                      **sync_env()).stdout)
        assert (as_json["ok"], sorted(m["kind"] for m in as_json["mismatches"])) == (
            False, ["body_params", "missing", "missing_language", "status"])
        # When the mappings are fixed (the broken ones removed, the count corrected)
        empty_meta_tables(sessions)
        map_template(sessions, "welcome_new_member", "welcome_member", "id", {"body": ["{{ name }}", "{{ member_id }}"]})
        clean = wanotify(settings, "templates", "sync", WHATSAPP_API_BASE_URL=graph.url, **sync_env())
        # Then it exits 0
        assert (clean.returncode, clean.stdout.strip()) == (
            0, "5 template(s) in the account; every mapping matches an APPROVED template")


def test_templates_sync_without_an_account_id_a_token_or_a_reachable_api_is_one_clear_line(settings, sessions):
    no_waba = wanotify(settings, "templates", "sync", WHATSAPP_WABA_ID=None)
    assert no_waba.returncode == 2 and "WHATSAPP_WABA_ID is not set" in one_error_line(no_waba)
    no_token = wanotify(settings, "templates", "sync", WHATSAPP_WABA_ID=WABA_ID, WHATSAPP_ACCESS_TOKEN=None)
    assert no_token.returncode == 2 and "WHATSAPP_ACCESS_TOKEN is not set" in one_error_line(no_token)
    away = wanotify(settings, "templates", "sync", WHATSAPP_WABA_ID=WABA_ID, WHATSAPP_API_BASE_URL="http://127.0.0.1:1")
    assert away.returncode == 1
    assert "cannot reach the WhatsApp Business Management API at http://127.0.0.1:1" in one_error_line(away)
    with graph_api() as graph:
        refused = wanotify(settings, "templates", "sync", WHATSAPP_API_BASE_URL=graph.url, WHATSAPP_WABA_ID=WABA_ID,
                           WHATSAPP_ACCESS_TOKEN="expired")
        assert "HTTP 401, code 190" in one_error_line(refused) and "WHATSAPP_ACCESS_TOKEN" in refused.stderr


def test_the_sender_syncs_templates_on_start_and_its_metrics_follow_the_database(settings, sessions):
    # Given a mapping to a template the account has PAUSED, and a sender with the account's id
    empty_meta_tables(sessions)
    map_template(sessions, "payment_success", "payment_success", "id", {"body": ["{{ name }}", "{{ amount }}"]})
    port = free_port()
    with graph_api() as graph:
        proc = Proc(["run", "sender"], env(settings, WHATSAPP_API_BASE_URL=graph.url, METRICS_PORT=port,
                                           TEMPLATE_SYNC_SECONDS=3600, **sync_env()), ready="consuming", name="sender")
        try:
            # Then it syncs at start-up and logs the mismatch
            proc.wait_for_log("template sync: 5 template(s) in the account, 1 mismatch(es)")
            assert "template sync: payment_success: payment_success (id) is PAUSED, not APPROVED" in proc.log()
            paused = 'wanotify_meta_template_status{language="id",status="PAUSED",template="payment_success"} 1.0'
            metrics = f"http://127.0.0.1:{port}/metrics"
            wait_until(lambda: paused in metric_lines(metrics, "wanotify_meta_template_status"), 20, "the paused gauge")
            # When another process records that Meta approved it, the sender's gauge follows the database
            with transaction(sessions) as session:
                row = session.get(MetaTemplate, ("payment_success", "id"))
                assert row is not None
                row.status = "APPROVED"
            approved = paused.replace("PAUSED", "APPROVED")
            wait_until(lambda: approved in metric_lines(metrics, "wanotify_meta_template_status"), 20, "the approved gauge")
            assert paused not in metric_lines(metrics, "wanotify_meta_template_status")
        finally:
            proc.close()
