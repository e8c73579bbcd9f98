"""Choosing per message: free-form text inside the window, the approved template outside it,
a park before any call when there is none, and a cancellation when the recipient opted out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from wanotify.consumers.providers.classify import NeedsTemplate, RecipientOptedOut, TemplateRefused
from wanotify.consumers.sender.choice import AsTemplate, Facts, Refusal, Rules, Text, choose
from wanotify.consumers.sender.policy import Cancel, Dead, decide
from wanotify.shared.config import Settings
from wanotify.shared.db.models import Status
from wanotify.shared.meta_templates import Mapping
from wanotify.shared.runtime import RuntimeSettings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
META = Rules(windowed=True, text_first=False, window_seconds=86_400, opt_out_scope="marketing")
GATEWAY = replace(META, windowed=False)
PAYMENT = Mapping("payment_link_v2", "id", "utility", {"body": ["{{ name }}", "{{ amount|money }}"]})
FACTS = Facts(recipient="+628114040707", template="payment_link", event_type="payment.link_created",
              priority="high", variables={"name": "Budi", "amount": 150000}, mapping=PAYMENT, meta_status=None,
              last_inbound_at=None, opted_out_at=None)


def wrote(seconds_ago: float) -> datetime:
    return NOW - timedelta(seconds=seconds_ago)


def test_outside_the_window_the_mapped_template_goes_with_its_parameters() -> None:
    form = choose(FACTS, NOW, META)
    assert isinstance(form, AsTemplate)
    assert form.call.name == "payment_link_v2" and form.call.language == "id"
    assert form.call.components == [{"type": "body", "parameters": [{"type": "text", "text": "Budi"},
                                                                    {"type": "text", "text": "150.000"}]}]


def test_inside_the_window_the_text_goes_with_the_template_ready_if_meta_disagrees() -> None:
    form = choose(replace(FACTS, last_inbound_at=wrote(3600)), NOW, META)
    assert isinstance(form, Text)
    assert getattr(form.fallback, "name", None) == "payment_link_v2"


def test_a_window_older_than_the_setting_is_closed() -> None:
    facts = replace(FACTS, last_inbound_at=wrote(3))
    assert isinstance(choose(facts, NOW, META), Text)
    assert isinstance(choose(facts, NOW, replace(META, window_seconds=2)), AsTemplate)


def test_without_a_mapping_and_a_window_the_message_is_parked_before_any_call() -> None:
    form = choose(replace(FACTS, mapping=None), NOW, META)
    assert isinstance(form, Refusal)
    assert (form.status, form.code) == (Status.DEAD, "no_approved_template")
    assert "wanotify templates set payment_link --meta-name" in form.reason
    assert "wanotify dead replay --reason no_approved_template" in form.reason


def test_without_a_mapping_but_inside_the_window_the_text_goes() -> None:
    form = choose(replace(FACTS, mapping=None, last_inbound_at=wrote(60)), NOW, META)
    assert isinstance(form, Text) and isinstance(form.fallback, Refusal)
    assert form.fallback.code == "no_approved_template"


@pytest.mark.parametrize(("status", "code"), [("PAUSED", "template_paused"), ("DISABLED", "template_disabled"),
                                              ("rejected", "template_rejected")])
def test_a_template_meta_will_not_deliver_is_parked_with_what_to_fix(status: str, code: str) -> None:
    form = choose(replace(FACTS, meta_status=status), NOW, META)
    assert isinstance(form, Refusal) and (form.status, form.code) == (Status.DEAD, code)
    assert "payment_link_v2 (id)" in form.reason and f"--reason {code}" in form.reason


@pytest.mark.parametrize("status", ["APPROVED", "PENDING", None])
def test_an_approved_or_unknown_status_lets_the_template_go(status: str | None) -> None:
    assert isinstance(choose(replace(FACTS, meta_status=status), NOW, META), AsTemplate)


def test_a_mapping_that_cannot_fill_its_parameters_is_parked_as_template_params() -> None:
    form = choose(replace(FACTS, variables={"name": "Budi"}), NOW, META)
    assert isinstance(form, Refusal) and form.code == "template_params"
    assert "'amount' is undefined" in form.reason and "--meta-params" in form.reason


def test_the_text_first_mode_sends_text_even_when_no_window_is_known() -> None:
    form = choose(FACTS, NOW, replace(META, text_first=True))
    assert isinstance(form, Text) and getattr(form.fallback, "name", None) == "payment_link_v2"


def test_a_gateway_always_gets_the_text_and_never_a_fallback() -> None:
    assert choose(replace(FACTS, mapping=None), NOW, GATEWAY) == Text()


MARKETING = replace(PAYMENT, category="marketing")


@pytest.mark.parametrize(("changes", "rules", "stopped"), [
    ({"mapping": MARKETING}, META, True),
    ({"mapping": MARKETING}, GATEWAY, True),
    ({"event_type": "notification.requested", "priority": "low"}, META, True),
    ({"event_type": "notification.requested", "priority": "normal"}, META, False),
    ({}, META, False),  # a payment link is transactional: it still goes under the default scope
    ({}, replace(META, opt_out_scope="all"), True),
])
def test_an_opt_out_stops_what_its_scope_covers(changes: dict[str, object], rules: Rules, stopped: bool) -> None:
    form = choose(replace(FACTS, opted_out_at=wrote(10), **changes), NOW, rules)  # type: ignore[arg-type]
    if stopped:
        assert isinstance(form, Refusal) and (form.status, form.code) == (Status.CANCELLED, "opted_out")
    else:
        assert not isinstance(form, Refusal)


def test_rules_follow_the_provider_and_the_settings() -> None:
    settings = Settings.from_env({"CUSTOMER_WINDOW_SECONDS": "2", "OPT_OUT_SCOPE": "all", "WHATSAPP_SEND_MODE": "text"})
    assert Rules.of(settings, "meta") == Rules(True, True, 2.0, "all")
    assert Rules.of(Settings.from_env({}), "gateway") == Rules(False, False, 86_400.0, "marketing")


RUNTIME = RuntimeSettings(auto_retry_enabled=True, max_retry_attempts=3, retry_delay_minutes=1.0, message_delay_seconds=1.0)


def test_a_recipient_who_stopped_marketing_is_cancelled_and_template_errors_are_parked() -> None:
    assert decide(RecipientOptedOut("x", code="opted_out"), 0, RUNTIME, 1.0, 60) == Cancel("opted_out")
    assert decide(TemplateRefused("x", code="template_paused", status="PAUSED"), 0, RUNTIME, 1.0, 60) == \
        Dead("permanent")
    assert decide(NeedsTemplate("x", code="meta_131047"), 0, RUNTIME, 1.0, 60) == Dead("permanent")
