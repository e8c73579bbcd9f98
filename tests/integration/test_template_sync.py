"""Template sync against a local Business Management API serving a recorded-shape template list."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.support.graph_api import TOKEN, WABA_ID, GraphStub, graph_api
from tests.support.meta import empty_meta_tables, map_template, rows
from wanotify.shared.config import Settings
from wanotify.shared.db.models import MetaTemplate
from wanotify.shared.errors import ConfigError
from wanotify.shared.template_sync import SyncError, sync_forever, sync_templates

BUTTON = {"index": 0, "sub_type": "url", "text": "{{ payment_url }}"}
CLEAN = {
    "welcome_new_member": ("welcome_member", "id", {"body": ["{{ name }}", "{{ member_id }}"]}),
    "payment_link": ("payment_link", "id", {"header": ["{{ name }}"], "body": ["{{ name }}", "{{ amount|money }}"],
                                            "buttons": [BUTTON]}),
    "withdrawal_approved": ("withdrawal_update", "id", {"body": {"customer_name": "{{ name }}",
                                                                 "withdrawal_id": "{{ withdrawal_id }}"}}),
}


@pytest.fixture
def graph(sessions) -> Iterator[GraphStub]:  # type: ignore[no-untyped-def]
    empty_meta_tables(sessions)
    with graph_api() as stub:
        yield stub


def meta_settings(settings: Settings, graph: GraphStub, **whatsapp: Any) -> Settings:
    options = {"provider": "meta", "base_url": graph.url, "waba_id": WABA_ID, "access_token": TOKEN, **whatsapp}
    return settings.with_(whatsapp=replace(settings.whatsapp, **options))


def map_all(sessions, mappings: dict[str, tuple[str, str, Any]]) -> None:  # type: ignore[no-untyped-def]
    for key, (name, language, params) in mappings.items():
        map_template(sessions, key, name, language, params)


def test_a_clean_account_has_no_mismatch_and_every_page_is_read_and_stored(settings, sessions, graph):
    map_all(sessions, CLEAN)
    report = sync_templates(meta_settings(settings, graph), sessions)
    assert (report.fetched, report.mismatches) == (5, [])
    assert [r["query"].get("after") for r in graph.requests] == [None, ["QVFIUmlBZAU2"]]
    assert {r["authorization"] for r in graph.requests} == {f"Bearer {TOKEN}"}
    assert rows(sessions, "SELECT name, language, status, quality, meta_id FROM meta_templates ORDER BY name") == [
        ("commission_received", "en_US", "APPROVED", None, "1023456789012348"),
        ("payment_link", "id", "APPROVED", None, "1023456789012346"),
        ("payment_success", "id", "PAUSED", "RED", "1023456789012347"),
        ("welcome_member", "id", "APPROVED", None, "1023456789012345"),
        ("withdrawal_update", "id", "APPROVED", None, "1023456789012349"),
    ]
    with sessions() as session:
        stored = session.get(MetaTemplate, ("payment_link", "id"))
        assert stored is not None and [c["type"] for c in stored.components or []] == ["HEADER", "BODY", "BUTTONS"]


def test_each_kind_of_mismatch_is_reported_in_plain_words(settings, sessions, graph):
    map_all(sessions, {
        "welcome_new_member": ("welcome_member", "id", {"body": ["{{ name }}"]}),
        "payment_success": ("payment_success", "id", {"body": ["{{ name }}", "{{ amount|money }}"]}),
        "commission_received": ("commission_received", "id", {"body": ["{{ name }}", "{{ amount|money }}"]}),
        "account_activated": ("account_active", "id", {"body": ["{{ name }}"]}),
        "payment_link": ("payment_link", "id", {"body": ["{{ name }}", "{{ amount|money }}"]}),
        "withdrawal_approved": ("withdrawal_update", "id", {"body": {"name": "{{ name }}", "withdrawal_id": "x"}}),
    })
    report = sync_templates(meta_settings(settings, graph), sessions)
    found = {(m.template, m.kind): m.detail for m in report.mismatches}
    assert found == {
        ("account_activated", "missing"): "account_activated: the account has no template named account_active",
        ("commission_received", "missing_language"):
            "commission_received: the account has commission_received in en_US, not in id",
        ("payment_link", "header_params"):
            "payment_link: payment_link (id) header has 1 parameter ({{1}}), the mapping fills 0",
        ("payment_link", "button_params"):
            "payment_link: payment_link (id) URL buttons taking a parameter: #0; the mapping fills none",
        ("payment_success", "status"):
            "payment_success: payment_success (id) is PAUSED, not APPROVED: Meta will not deliver it",
        ("welcome_new_member", "body_params"):
            "welcome_new_member: welcome_member (id) body has 2 parameters ({{1}}, {{2}}), the mapping fills 1",
        ("withdrawal_approved", "body_params"):
            "withdrawal_approved: withdrawal_update (id) body names its parameters customer_name, withdrawal_id; "
            "the mapping fills name, withdrawal_id",
    }


def test_a_template_the_account_no_longer_lists_is_marked_missing(settings, sessions, graph):
    with sessions.begin() as session:
        session.add(MetaTemplate(name="old_promo", language="id", status="APPROVED"))
    sync_templates(meta_settings(settings, graph), sessions)
    assert rows(sessions, "SELECT status FROM meta_templates WHERE name = 'old_promo'") == [("MISSING",)]


@pytest.mark.parametrize(("whatsapp", "needle"), [
    ({"waba_id": None}, "WHATSAPP_WABA_ID is not set"),
    ({"access_token": None}, "WHATSAPP_ACCESS_TOKEN is not set"),
])
def test_missing_credentials_are_configuration_errors_naming_the_variable(settings, sessions, graph, whatsapp, needle):
    with pytest.raises(ConfigError, match=needle):
        sync_templates(meta_settings(settings, graph, **whatsapp), sessions)
    assert graph.requests == []


def test_a_refused_token_and_an_unreachable_api_are_one_clear_error(settings, sessions, graph):
    with pytest.raises(SyncError, match=r"refused to list the templates \(HTTP 401, code 190: Invalid OAuth"):
        sync_templates(meta_settings(settings, graph, access_token="expired"), sessions)
    with pytest.raises(SyncError, match=r"cannot reach the WhatsApp Business Management API at http://127\.0\.0\.1:1"):
        sync_templates(meta_settings(settings, graph, base_url="http://127.0.0.1:1"), sessions)
    graph.refuse = (200, {"unexpected": True})
    with pytest.raises(SyncError, match="without a template list"):
        sync_templates(meta_settings(settings, graph), sessions)


def test_a_next_page_on_another_host_is_not_followed_so_the_token_stays_home(settings, sessions, graph):
    page = graph.page("message_templates_page1.json")
    page["paging"]["next"] = "http://elsewhere.invalid/v21.0/x/message_templates?after=1"
    graph.refuse = (200, page)
    assert sync_templates(meta_settings(settings, graph), sessions).fetched == 2
    assert len(graph.requests) == 1


def test_the_timed_sync_logs_mismatches_and_failures_and_keeps_going(settings, sessions, graph, caplog):
    map_all(sessions, {"account_activated": ("account_active", "id", {"body": ["{{ name }}"]})})
    timed = meta_settings(settings, graph).with_(template_sync_seconds=0.05)

    async def run_a_while() -> None:
        task = asyncio.create_task(sync_forever(timed, sessions))
        await asyncio.sleep(0.3)
        graph.refuse = (500, {"error": {"message": "down", "code": 2}})
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()

    with caplog.at_level("INFO", logger="wanotify.shared.template_sync"):
        asyncio.run(run_a_while())
    assert "template sync: account_activated: the account has no template named account_active" in caplog.text
    assert "template sync failed, trying again in 0.05 s" in caplog.text and "HTTP 500" in caplog.text
