"""What the webhook hears, as the whole pipeline meets it: a member's own message opens their
window, so the next message goes as free-form text; a template Meta pauses parks the next
message that needs it, with its reason, before any call, and once Meta approves the template
again ``wanotify dead replay`` sends it exactly once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.e2e.scenario import member, payment_link
from tests.support.db import messages
from tests.support.meta import empty_meta_tables, map_template
from tests.support.processes import Proc, wait_until
from tests.support.stack import Stack
from tests.support.web import SECRET
from tests.support.web import TOKEN as VERIFY_TOKEN
from wanotify.ops.fake_provider import FakeProviderServer

PARAMS = {"body": ["{{ name }}", "{{ amount|money }}"]}
QUIET = 1.5  # how long "no further call" is watched


@pytest.fixture
def fake_provider() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(timeout_sleep=3.0, strict=True) as server:
        server.register_template("payment_link_v2", "id", 2, text="Halo {{1}}, bayar Rp {{2}}")
        yield server


@pytest.fixture
def webhook_url(stack: Stack, sessions) -> Iterator[str]:  # type: ignore[no-untyped-def]
    empty_meta_tables(sessions)
    proc = Proc(["run", "web", "--only", "webhook", "--port", "0"],
                stack.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, WHATSAPP_APP_SECRET=SECRET), ready="web: serving", name="web")
    try:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", proc.log())
        assert match, proc.log()
        yield f"{match[1]}/webhooks/whatsapp"
    finally:
        proc.close()
        empty_meta_tables(sessions)


def test_a_paused_template_parks_the_next_message_and_after_approval_a_replay_sends_it_once(
        stack: Stack, publisher, fake_provider: FakeProviderServer, sessions, webhook_url: str):
    # Given the pipeline running against a strict fake, payment_link mapped to an approved template
    stack.start("notifier")
    stack.start("sender", WHATSAPP_SEND_MODE="window")
    map_template(sessions, "payment_link", "payment_link_v2", "id", PARAMS)
    # When Meta pauses that template (and its webhook says so)
    fake_provider.register_template("payment_link_v2", "id", 2, status="PAUSED")
    assert fake_provider.send_template_status(webhook_url, SECRET, "payment_link_v2", "id", "PAUSED",
                                              reason="LOW_QUALITY").body["events"] == {"template": 1}
    # Then a payment link for a member outside their window is parked with its reason, with no call made
    publisher.publish("payment.link_created", payment_link(1))
    [row] = wait_until(lambda: [m for m in messages(sessions) if m.status == "dead"], 20, "the parked message")
    assert (row.error_code, row.attempts) == ("template_paused", 0)
    assert "payment_link_v2 (id)" in row.last_error and "PAUSED" in row.last_error
    time.sleep(QUIET)
    assert fake_provider.calls() == []
    # When Meta approves it again, and an operator replays what the pause parked
    fake_provider.register_template("payment_link_v2", "id", 2, status="APPROVED")
    assert fake_provider.send_template_status(webhook_url, SECRET, "payment_link_v2", "id",
                                              "APPROVED").body["events"] == {"template": 1}
    replayed = stack.cli("dead", "replay", "--all", "--reason", "template_paused", "--yes", "--json")
    assert json.loads(replayed)["messages_replayed"] == 1
    # Then it goes as the template, once
    [call] = fake_provider.wait_for_calls(1, timeout=20)
    assert (call["kind"], call["template"], call["status"]) == ("template", "payment_link_v2", 200)
    wait_until(lambda: messages(sessions)[0].status == "sent", 20, "the replayed message sent")
    again = stack.cli("dead", "replay", "--all", "--reason", "template_paused", "--yes", "--json")
    assert json.loads(again)["messages_replayed"] == 0
    time.sleep(QUIET)
    assert len(fake_provider.calls()) == 1


def test_a_member_who_wrote_through_the_webhook_gets_the_next_message_as_text(
        stack: Stack, publisher, fake_provider: FakeProviderServer, sessions, webhook_url: str):
    # Given the pipeline against a strict fake (text only inside the window), welcome mapped to a template
    stack.start("notifier")
    stack.start("sender", WHATSAPP_SEND_MODE="window")
    map_template(sessions, "welcome_new_member", "payment_link_v2", "id", PARAMS)
    # When member 1 writes to the number (Meta's webhook), and then both members register
    assert fake_provider.send_inbound(webhook_url, SECRET, "+628114040001", "Halo").body["events"] == {"inbound": 1}
    publisher.publish("member.registered", member(1))
    publisher.publish("member.registered", member(2) | {"amount": 1})
    calls = fake_provider.wait_for_calls(2, timeout=20)
    # Then the one who wrote gets free-form text; the other, whose window is closed, the template
    kinds = {call["to"]: call["kind"] for call in calls}
    assert kinds == {"628114040001": "text", "628114040002": "template"}
    assert {call["status"] for call in calls} == {200}
