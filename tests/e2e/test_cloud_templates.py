"""The Cloud API send path against a strict fake: the 24-hour window, approved templates,
opt-outs and the template error codes, with the notifier and the sender as processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from tests.e2e.scenario import member, payment_link
from tests.support.db import attempts, messages
from tests.support.processes import wait_until
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.shared import recipients
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MetaTemplate, Recipient, Template

PAYMENT_PARAMS = {
    "body": ["{{ name }}", "{{ amount|money }}"],
    "buttons": [{"index": 0, "sub_type": "url", "text": "{{ payment_url|replace('https://pay.example.com/', '') }}"}],
}
WINDOW = {"WHATSAPP_SEND_MODE": "window"}  # the product's default; the test stack sends text first
QUIET = 1.0  # how long "no call" is watched after the message settled


@pytest.fixture
def fake_provider() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(timeout_sleep=3.0, strict=True) as server:
        server.register_template("payment_link_v2", "id", 2, text="Halo {{1}}, bayar Rp {{2}}")
        yield server


@pytest.fixture
def sessions(sessions):  # type: ignore[no-untyped-def]
    """No recipients, Meta statuses or mappings left over from another test."""
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE recipients, meta_templates"))
    yield sessions
    with transaction(sessions) as session:
        session.execute(update(Template).values(meta_name=None, meta_language=None, meta_category=None,
                                                meta_params=None))


def map_template(sessions, key: str, name: str, category: str = "utility",  # type: ignore[no-untyped-def]
                 params: dict[str, Any] | None = None) -> None:
    with transaction(sessions) as session:
        session.execute(update(Template).where(Template.key == key).values(
            meta_name=name, meta_language="id", meta_category=category,
            meta_params=PAYMENT_PARAMS if params is None else params))


def phone_of(i: int) -> str:
    return f"+62811404{i:04d}"


def settled(sessions, count: int = 1, timeout: float = 20):  # type: ignore[no-untyped-def]
    """The log rows once ``count`` of them left queued/pending/failed."""
    return wait_until(lambda: (rows := messages(sessions)) and len(
        [m for m in rows if m.status not in ("queued", "pending", "failed")]) >= count and rows, timeout, "settled rows")


def test_a_payment_link_outside_the_window_goes_as_the_mapped_template(stack, publisher, fake_provider, sessions):
    # Given a running pipeline and payment_link mapped to an approved template
    stack.start("notifier")
    stack.start("sender", **WINDOW)
    map_template(sessions, "payment_link", "payment_link_v2")
    # When a payment link is created for a member who never wrote to the number
    publisher.publish("payment.link_created", payment_link(1))
    [call] = fake_provider.wait_for_calls(1, timeout=20)
    # Then the approved template went, with its parameters and the link's suffix in the button
    assert (call["kind"], call["template"], call["language"], call["status"]) == (
        "template", "payment_link_v2", "id", 200)
    assert call["params"] == {"body": ["Member 1", "150.001"], "buttons": {"0": ["i/1"]}}
    assert call["body"] == "Halo Member 1, bayar Rp 150.001"
    [row] = settled(sessions)
    assert (row.status, row.sent_as, row.attempts) == ("sent", "template", 1)
    assert row.variables["payment_url"] == "https://pay.example.com/i/1" and "phone" not in row.variables


def test_inside_the_window_text_goes_and_after_it_closes_the_template_again(stack, publisher, fake_provider,
                                                                           sessions):
    stack.start("notifier")
    stack.start("sender", CUSTOMER_WINDOW_SECONDS=2, **WINDOW)
    map_template(sessions, "payment_link", "payment_link_v2")
    # Given a member who just wrote to the number (the webhook records it; here directly)
    with transaction(sessions) as session:
        recipients.record_inbound(session, phone_of(1), datetime.now(UTC))
    fake_provider.open_window(phone_of(1))
    # When a payment link is created, the local text goes
    publisher.publish("payment.link_created", payment_link(1))
    [first] = fake_provider.wait_for_calls(1, timeout=20)
    assert (first["kind"], first["status"]) == ("text", 200)
    assert first["body"].startswith("Halo Member 1, silakan selesaikan pembayaran sebesar Rp 150.001")
    # and once the window has closed (CUSTOMER_WINDOW_SECONDS=2), the next one is the template
    time.sleep(2.2)
    publisher.publish("payment.link_created", payment_link(1) | {"amount": 99000})
    second = fake_provider.wait_for_calls(2, timeout=20)[1]
    assert (second["kind"], second["template"], second["status"]) == ("template", "payment_link_v2", 200)
    assert second["params"]["body"] == ["Member 1", "99.000"]
    rows = settled(sessions, 2)
    assert sorted(m.sent_as for m in rows) == ["template", "text"]


def test_without_a_mapping_or_a_window_it_is_parked_at_once_and_replay_sends_it_once(stack, publisher,
                                                                                      fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender", **WINDOW)
    publisher.publish("payment.link_created", payment_link(1))
    [row] = settled(sessions)
    time.sleep(QUIET)
    # Then it is parked before any call, without spending an attempt
    assert (row.status, row.error_code, row.attempts) == ("dead", "no_approved_template", 0)
    assert "wanotify templates set payment_link --meta-name" in row.last_error
    assert fake_provider.calls() == [] and attempts(sessions, row.id) == []
    listed = json.loads(stack.cli("dead", "list", "--reason", "no_approved_template", "--json"))
    assert [r["id"] for r in listed] == [f"m{row.id}"]
    # When an admin maps an approved template and replays it
    stack.cli("templates", "set", "payment_link", "--meta-name", "payment_link_v2", "--meta-language", "id",
              "--meta-category", "utility", "--meta-params", json.dumps(PAYMENT_PARAMS))
    replayed = json.loads(stack.cli("dead", "replay", f"m{row.id}", "--json"))
    assert replayed["messages_replayed"] == 1
    [call] = fake_provider.wait_for_calls(1, timeout=20)
    time.sleep(QUIET)
    # Then it is sent exactly once, as the template the mapping names
    assert len(fake_provider.calls()) == 1
    assert (call["kind"], call["template"], call["params"]["buttons"]) == ("template", "payment_link_v2", {"0": ["i/1"]})
    [sent] = messages(sessions)
    assert (sent.id, sent.status, sent.sent_as, sent.attempts) == (row.id, "sent", "template", 1)


def test_an_opted_out_member_gets_transactional_messages_but_no_marketing(stack, publisher, fake_provider,
                                                                          sessions):
    map_template(sessions, "payment_link", "payment_link_v2")
    map_template(sessions, "welcome_new_member", "welcome_promo", category="marketing", params={})
    fake_provider.register_template("welcome_promo", "id", 0)
    with transaction(sessions) as session:
        recipients.opt_out(session, phone_of(1), "cli")
    stack.start("notifier")
    # A marketing-mapped template, and a bulk (low) notification: stopped when written
    publisher.publish("member.registered", member(1))
    publisher.publish("notification.requested", {"phone": phone_of(1), "template": "test_message",
                                                 "priority": "low", "variables": {"sent_at": "now"}})
    stopped = settled(sessions, 2)
    assert [(m.status, m.error_code, m.attempts) for m in stopped] == [("cancelled", "opted_out", 0)] * 2
    assert "OPT_OUT_SCOPE=marketing" in stopped[0].last_error
    # An opt-out that arrives while a marketing message waits: the sender stops it before the call
    publisher.publish("notification.requested", {"phone": phone_of(2), "template": "test_message",
                                                 "priority": "low", "variables": {"sent_at": "later"}})
    wait_until(lambda: len(messages(sessions)) == 3, 15, "the waiting message")
    with transaction(sessions) as session:
        recipients.opt_out(session, phone_of(2), "keyword")
    stack.start("sender", **WINDOW)
    # while the payment link to the opted-out member follows the rule for transactional messages: sent
    publisher.publish("payment.link_created", payment_link(1))
    [call] = fake_provider.wait_for_calls(1, timeout=20)
    rows = settled(sessions, 4)
    time.sleep(QUIET)
    assert len(fake_provider.calls()) == 1
    assert (call["to"], call["template"]) == (phone_of(1).lstrip("+"), "payment_link_v2")
    by_template = {(m.template, m.recipient): m for m in rows}
    waiting = by_template[("test_message", phone_of(2))]
    assert (waiting.status, waiting.error_code, waiting.attempts) == ("cancelled", "opted_out", 0)
    assert by_template[("payment_link", phone_of(1))].status == "sent"


def test_a_text_refused_with_131047_is_resent_as_the_template_at_once(stack, publisher, fake_provider, sessions,
                                                                       settings):
    stack.start("notifier")
    stack.start("sender", **WINDOW)
    map_template(sessions, "payment_link", "payment_link_v2")
    # Given a window the product believes open but Meta does not (the fake's is closed)
    with transaction(sessions) as session:
        recipients.record_inbound(session, phone_of(1), datetime.now(UTC))
    publisher.publish("payment.link_created", payment_link(1))
    text_call, template_call = fake_provider.wait_for_calls(2, timeout=20)
    [row] = settled(sessions)
    time.sleep(QUIET)
    # Then the text was refused, and the template went one gap later, without a retry delay
    assert [(c["kind"], c["error_code"]) for c in fake_provider.calls()] == [("text", 131047), ("template", None)]
    resent_after = template_call["t"] - text_call["t"]
    print(f"template resent {resent_after:.3f} s after the refused text (gap {settings.send_gap_seconds} s, "
          f"retry delay {settings.retry_delay_seconds} s)")
    assert settings.send_gap_seconds - 0.002 <= resent_after < settings.retry_delay_seconds
    assert (row.status, row.sent_as, row.attempts) == ("sent", "template", 1)
    assert [(a.attempt, a.outcome, a.error_code) for a in attempts(sessions, row.id)] == [
        (1, "text_refused", "meta_131047"), (1, "sent", None)]


def test_template_errors_park_with_their_reason_and_a_paused_template_is_known_afterwards(stack, publisher,
                                                                                           fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender", **WINDOW)
    map_template(sessions, "payment_link", "payment_link_v2")
    map_template(sessions, "payment_success", "payment_done", params={"body": ["{{ name }}"]})
    fake_provider.register_template("payment_link_v2", "id", 2, status="PAUSED")
    fake_provider.register_template("payment_done", "id", 2)  # Meta's template takes two parameters
    # When Meta says the template is paused (132015) and the other has the wrong parameter count (132000)
    publisher.publish("payment.link_created", payment_link(1))
    publisher.publish("payment.succeeded", member(2) | {"amount": 5000})
    rows = settled(sessions, 2)
    by_template = {m.template: m for m in rows}
    paused, miscounted = by_template["payment_link"], by_template["payment_success"]
    assert (paused.status, paused.error_code) == ("dead", "template_paused")
    assert "(#132015)" in paused.last_error and "map another approved template" in paused.last_error
    assert (miscounted.status, miscounted.error_code) == ("dead", "meta_132000")
    assert "number of parameters does not match" in miscounted.last_error and "--meta-params" in miscounted.last_error
    with sessions() as session:
        assert session.get(MetaTemplate, ("payment_link_v2", "id")).status == "PAUSED"
    # Then the next payment link is parked before any call: the pause is known
    publisher.publish("payment.link_created", payment_link(3))
    rows = settled(sessions, 3)
    time.sleep(QUIET)
    [third] = [m for m in rows if m.recipient == phone_of(3)]
    assert (third.status, third.error_code, third.attempts) == ("dead", "template_paused", 0)
    assert len(fake_provider.calls()) == 2


def test_a_member_who_stopped_marketing_is_recorded_opted_out_and_the_message_cancelled(
        stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender", **WINDOW)
    map_template(sessions, "welcome_new_member", "welcome_promo", category="marketing", params={})
    fake_provider.register_template("welcome_promo", "id", 0)
    fake_provider.fail_next(1, "opted_out")
    publisher.publish("member.registered", member(1))
    [row] = settled(sessions)
    assert (row.status, row.error_code) == ("cancelled", "opted_out")
    with sessions() as session:
        recipient = session.get(Recipient, phone_of(1))
    assert recipient is not None and recipient.opted_out_at is not None
    assert recipient.opt_out_source == "meta_131050"
