"""The admin actions as a new user meets them on the command line: dead letters, templates,
publishing by hand, pausing, the urgent send, the demo, and the audit log behind them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pika
import pytest
import requests
from sqlalchemy import func, select, text

from tests.e2e.scenario import gaps, member
from tests.support.broker import queue_depth
from tests.support.db import dead_events, messages
from tests.support.processes import run_wanotify, wait_until
from tests.support.provider_process import ProviderProcess
from wanotify.ops.admin.publishing import TEXT_TEMPLATE
from wanotify.shared.db.engine import drop_database, make_engine
from wanotify.shared.db.models import AuditEntry, MessageLog, Rule, Template, TemplateChange
from wanotify.shared.topology import Topology, declare_topology

# On this loaded two-core machine the provider notes arrivals a few milliseconds early or late,
# even in a process of its own; the sender's own tests pin the gap down to the millisecond. What
# these tests check is that pausing and the urgent send keep the gap at all.
CLOCK_NOISE = 0.01


def run_cli(stack, *args: str, stdin: str | None = None, **env: object) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return run_wanotify(args, stack.env(**env), stdin)


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """A refusal: exit code 1, one ``Error: …`` line, no traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr, done.stderr
    return done.stderr.splitlines()[-1]


def declare(settings) -> None:  # type: ignore[no-untyped-def]
    """The namespace's exchange and queues, as a running notifier would have declared them."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        declare_topology(connection.channel(), Topology(settings.namespace))
    finally:
        connection.close()


def audit_since(sessions, first_id: int) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.id > first_id).order_by(AuditEntry.id)))


def last_audit_id(sessions) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0))) or 0


@pytest.fixture
def broken_welcome(stack):  # type: ignore[no-untyped-def]
    """welcome_new_member stored with a variable member.registered events do not have (as an older
    version would have let it be saved), restored afterwards."""
    with make_engine(stack.settings.database_url, pool_size=1).begin() as conn:
        original = conn.execute(select(Template.body).where(Template.key == "welcome_new_member")).scalar_one()
        conn.execute(Template.__table__.update().where(Template.key == "welcome_new_member").values(body="Halo {{ nickname }}"))
    yield
    with make_engine(stack.settings.database_url, pool_size=1).begin() as conn:
        conn.execute(Template.__table__.update().where(Template.key == "welcome_new_member").values(body=original))


def park_one_message(stack, publisher, fake_provider, sessions, i: int = 1) -> MessageLog:  # type: ignore[no-untyped-def]
    fake_provider.fail_next(1, "permanent")
    publisher.publish("member.registered", member(i))
    return wait_until(lambda: [m for m in messages(sessions) if m.status == "dead"], 20, "a dead message")[0]


# --- dead letters -------------------------------------------------------------------------------------------


def test_dead_show_of_a_message_that_is_not_parked_says_so_and_fails(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender")
    publisher.publish("member.registered", member(1))
    [sent] = wait_until(lambda: [m for m in messages(sessions) if m.status == "sent"], 20, "a sent message")
    line = refused(run_cli(stack, "dead", "show", f"m{sent.id}"))
    assert f"m{sent.id} is not a dead letter: the message is sent" in line
    assert "no message m999999" in refused(run_cli(stack, "dead", "show", "m999999")).replace("there is ", "")


def test_replaying_unknown_ids_names_them_fails_and_replays_nothing(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender")
    dead = park_one_message(stack, publisher, fake_provider, sessions)
    line = refused(run_cli(stack, "dead", "replay", f"m{dead.id}", "m999999", "e999999"))
    assert "m999999 (no such message)" in line and "e999999 (no such parked event)" in line
    assert "nothing replayed" in line
    assert [m.status for m in messages(sessions)] == ["dead"]  # the known one was not replayed either
    # Replaying the same id twice is still fine: the second time there is nothing to do
    assert json.loads(stack.cli("dead", "replay", f"m{dead.id}", "--json"))["messages_replayed"] == 1
    assert json.loads(stack.cli("dead", "replay", f"m{dead.id}", "--json"))["messages_replayed"] == 0


def test_the_reason_filter_lists_the_reasons_messages_and_events_really_get(stack):
    help_text = " ".join(stack.cli("dead", "list", "--help").split())
    for real in ("meta_131026", "http_503", "timeout", "receipt_failed", "invalid_phone", "template_error"):
        assert real in help_text
    for invented in ("out_of_retries", "permanent,"):
        assert invented not in help_text


def test_the_list_is_oldest_first_across_messages_and_events(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender")
    # Given an event parked, then a message parked, then another event parked
    publisher.publish("member.registered", member(1) | {"phone": "12"})
    wait_until(lambda: len(dead_events(sessions)) == 1, 20, "the first parked event")
    time.sleep(0.05)
    dead = park_one_message(stack, publisher, fake_provider, sessions, i=2)
    time.sleep(0.05)
    publisher.publish("member.registered", member(3) | {"phone": "13"})
    wait_until(lambda: len(dead_events(sessions)) == 2, 20, "the second parked event")
    first, second = dead_events(sessions)
    # Then the list shows them in the order they were parked
    listed = [row["id"] for row in json.loads(stack.cli("dead", "list", "--json"))]
    assert listed == [f"e{first.id}", f"m{dead.id}", f"e{second.id}"]
    assert [row["id"] for row in json.loads(stack.cli("dead", "list", "--limit", "2", "--json"))] == listed[:2]


def test_an_event_parked_for_its_template_is_found_by_that_template(stack, publisher, sessions, broken_welcome):
    stack.start("notifier")
    publisher.publish("member.registered", member(1))
    publisher.publish("notification.requested", {"phone": "08114040707", "template": "no_such_one", "variables": {}})
    publisher.publish("member.registered", member(2) | {"phone": "12"})
    wait_until(lambda: len(dead_events(sessions)) == 3, 20, "three parked events")
    welcome = json.loads(stack.cli("dead", "list", "--template", "welcome_new_member", "--json"))
    assert [(row["reason"], row["template"]) for row in welcome] == [("template_error", "welcome_new_member")]
    missing = json.loads(stack.cli("dead", "list", "--template", "no_such_one", "--json"))
    assert [(row["reason"], row["template"]) for row in missing] == [("template_missing", "no_such_one")]


def test_a_replayed_event_parked_again_keeps_its_id_and_its_event_id(stack, publisher, sessions, broken_welcome):
    stack.start("notifier")
    event_id = publisher.publish("member.registered", member(1))
    [parked] = wait_until(lambda: dead_events(sessions), 20, "the parked event")
    assert json.loads(stack.cli("dead", "replay", f"e{parked.id}", "--json"))["events_replayed"] == 1
    wait_until(lambda: [e for e in dead_events(sessions) if e.status == "parked"], 20, "the event parked again")
    [again] = dead_events(sessions)
    assert (again.id, again.event_id, again.status) == (parked.id, event_id, "parked")
    [row] = json.loads(stack.cli("dead", "list", "--json"))
    assert (row["id"], row["event_id"]) == (f"e{parked.id}", event_id)


def test_bulk_replay_and_purge_show_a_dry_run_count_and_ask_first(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender")
    park_one_message(stack, publisher, fake_provider, sessions, i=1)
    publisher.publish("member.registered", member(2) | {"phone": "12"})
    wait_until(lambda: dead_events(sessions), 20, "a parked event")
    assert json.loads(stack.cli("dead", "replay", "--all", "--dry-run", "--json")) == \
        {"dry_run": True, "messages": 1, "events": 1}
    for action in ("replay", "purge"):
        # Answering no (or nothing) changes nothing; the question names the count
        declined = run_cli(stack, "dead", action, "--all", stdin="n\n")
        assert declined.returncode == 1 and f"{action.capitalize()} 1 message(s) and 1 event(s)?" in declined.stderr
        assert len(json.loads(stack.cli("dead", "list", "--json"))) == 2
    # --yes skips the question
    done = json.loads(stack.cli("dead", "purge", "--all", "--kind", "events", "--yes", "--json"))
    assert done["events_purged"] == 1
    answered = run_cli(stack, "dead", "replay", "--all", "--json", stdin="y\n")
    assert answered.returncode == 0 and json.loads(answered.stdout)["messages_replayed"] == 1


def test_every_operator_action_is_in_the_audit_log_with_its_actor_and_count(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender")
    dead = park_one_message(stack, publisher, fake_provider, sessions)
    first = last_audit_id(sessions)
    stack.cli("dead", "replay", f"m{dead.id}")
    stack.cli("retry-failed")
    stack.cli("pause", "--reason", "audit test")
    stack.cli("resume")
    stack.cli("send-test", "08114040707")
    stack.cli("queue", "clear", "--yes")
    stack.cli("dead", "purge", "--all", "--reason", "gateway_rejected", "--yes")
    entries = audit_since(sessions, first)
    assert [e.action for e in entries] == ["dead.replay", "retry_failed", "sending.pause", "sending.resume", "send.test",
                                           "queue.clear", "dead.purge"]
    assert all(e.actor.startswith("cli:") for e in entries)
    assert (entries[0].target, entries[0].count) == ({"ids": [f"m{dead.id}"]}, 1)
    assert entries[4].target["recipient"] == "6281******07"  # masked, never the number
    assert entries[6].target == {"kind": "all", "reason": "gateway_rejected"} and entries[6].count == 0


# --- templates ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "body", "expected"), [
    ("welcome_new_member", "Halo {{ nmae }}", "'nmae' is not a variable of member.registered events (did you mean 'name'?)"),
    ("payment_link", "Rp {{ amount | moneyy }}", "unknown filter 'moneyy' (did you mean 'money'?)"),
    ("welcome_new_member", "   ", "the template is empty"),
    ("new template", "Halo", "template key 'new template' may use only a-z, 0-9 and _"),
    ("welcome_new_member", "Halo {{ name ", "template syntax error"),
    # occurred_at is a date and time on every real event, not a string to slice
    ("welcome_new_member", "Halo {{ name }}, {{ occurred_at[:10] }}", "'datetime.datetime' object is not subscriptable"),
])
def test_a_template_that_would_fail_is_refused_with_the_reason_and_not_saved(stack, key, body, expected):
    before = json.loads(stack.cli("templates", "list", "--json"))
    assert expected in refused(run_cli(stack, "templates", "set", key, "--body", body))
    assert json.loads(stack.cli("templates", "list", "--json")) == before


def test_a_template_may_format_occurred_at_and_its_preview_shows_it_as_sent(stack, sessions):
    original = json.loads(stack.cli("templates", "show", "welcome_new_member", "--json"))["body"]
    try:
        saved = json.loads(stack.cli("templates", "set", "welcome_new_member", "--body",
                                     'Halo {{ name }}, terdaftar {{ occurred_at.strftime("%d/%m/%Y") }}', "--json"))
        assert saved["sample"] == "Halo Budi, terdaftar 22/11/2026"
        stack.cli("templates", "set", "welcome_new_member", "--body", "Halo {{ name }}, {{ occurred_at }}")
        preview = json.loads(stack.cli("templates", "preview", "welcome_new_member", "--json"))
        assert preview["text"] == "Halo Budi, 2026-11-22 10:00:00+00:00"  # str() of the event's datetime
    finally:
        stack.cli("templates", "set", "welcome_new_member", "--body", original)


def test_a_template_for_requested_notifications_may_use_any_variable(stack, sessions):
    try:
        saved = json.loads(stack.cli("templates", "set", "promo_x", "--body", "Halo {{ nickname }}, {{ code | upper }}",
                                     "--json"))
        assert saved["created"] and saved["sample"] == "Halo <nickname>, <CODE>"
        assert "unknown filter 'shout'" in refused(run_cli(stack, "templates", "set", "promo_x", "--body", "{{ x | shout }}"))
    finally:
        run_cli(stack, "templates", "delete", "promo_x")


def test_a_template_file_saved_with_a_byte_order_mark_is_read_without_it(stack, sessions, tmp_path):
    # Windows Notepad writes "UTF-8 with BOM"; the mark is no part of the text the member reads
    path = tmp_path / "promo.txt"
    path.write_bytes("\ufeffHalo {{ nickname }}".encode())
    try:
        stack.cli("templates", "set", "promo_bom", "--file", str(path))
        assert json.loads(stack.cli("templates", "show", "promo_bom", "--json"))["body"] == "Halo {{ nickname }}"
    finally:
        run_cli(stack, "templates", "delete", "promo_bom")


@pytest.mark.parametrize(("body", "sample"), [
    ("Poin {{ name }}: {% if points >= 100 %}hadiah menanti{% endif %}", "Poin <name>: hadiah menanti"),
    ("Poin Anda {{ points + 10 }}", "Poin Anda <points>"),
    ("Pesanan: {% for it in items %}{{ it.name }} x{{ it.qty }}{% endfor %}", "Pesanan: <items.name> x<items.qty>"),
])
def test_a_template_for_requested_notifications_is_not_refused_for_the_type_of_a_free_variable(stack, sessions, body,
                                                                                             sample):
    # Its events carry any variables, of any type: the check cannot know that points is a number
    try:
        saved = json.loads(stack.cli("templates", "set", "poin_info", "--body", body, "--json"))
        assert saved["created"] and saved["sample"] == sample
        assert json.loads(stack.cli("templates", "preview", "poin_info", "--json"))["text"] == sample
    finally:
        run_cli(stack, "templates", "delete", "poin_info")


@pytest.mark.parametrize(("body", "expected"), [
    ("{% if points >= 100 %}hadiah", "template syntax error"),
    ("{{ points.__class__ }}", "the template fails on sample data"),
    ("{{ points | shout }}", "unknown filter 'shout'"),
    ("{% for i in range(100000) %}x{% endfor %}", "range of 100000 numbers is too large"),
])
def test_a_template_for_requested_notifications_still_refuses_what_fails_whatever_the_values(stack, sessions, body,
                                                                                           expected):
    assert expected in refused(run_cli(stack, "templates", "set", "poin_info", "--body", body))
    assert "poin_info" not in stack.cli("templates", "list")


def test_every_template_change_is_in_its_history_and_delete_is_refused_while_a_rule_uses_it(stack, sessions):
    try:
        stack.cli("templates", "set", "reminder_x", "--body", "Halo {{ name }}")
        stack.cli("templates", "set", "reminder_x", "--body", "Halo {{ name }}!")
        stack.cli("templates", "set", "reminder_x", "--body", "Halo {{ name }}!")  # unchanged: no history row
        stack.cli("templates", "set", "reminder_x", "--body", "Halo {{ name }}!", "--inactive")
        with sessions.begin() as session:
            session.add(Rule(event_type="member.activated", template="reminder_x", priority="normal"))
        line = refused(run_cli(stack, "templates", "delete", "reminder_x"))
        assert "template 'reminder_x' is used by the rule(s) for member.activated" in line
        with sessions.begin() as session:
            session.execute(Rule.__table__.delete().where(Rule.template == "reminder_x"))
        stack.cli("templates", "delete", "reminder_x")
        with sessions() as session:
            changes = list(session.scalars(select(TemplateChange).where(TemplateChange.template_key == "reminder_x")
                                           .order_by(TemplateChange.id)))
        assert [(c.before and c.before["body"], c.after and c.after["body"]) for c in changes] == [
            (None, "Halo {{ name }}"), ("Halo {{ name }}", "Halo {{ name }}!"), ("Halo {{ name }}!", "Halo {{ name }}!"),
            ("Halo {{ name }}!", None)]
        assert changes[2].after["active"] is False and all(c.actor.startswith("cli:") for c in changes)
        history = json.loads(stack.cli("templates", "history", "reminder_x", "--json"))
        assert "+Halo {{ name }}!" in history[-2]["diff"] and history[1]["diff"] == "active: True -> False"
    finally:
        with sessions.begin() as session:
            session.execute(Rule.__table__.delete().where(Rule.template == "reminder_x"))
            session.execute(Template.__table__.delete().where(Template.key == "reminder_x"))


# --- publishing by hand ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["publish", "nope.thing", "--data", "{}"], "(unknown_type): no notification rule for event type 'nope.thing'"),
    (["publish", "member.registered", "--data", '{"phone": "08114040707"}'],
     "(invalid_data): member.registered data: member_id: Field required; name: Field required"),
    (["publish", "notification.requested", "--data", '{"phone": "08114040707", "template": "nope", "variables": {}}'],
     "(template_missing): template 'nope' does not exist or is not active"),
    (["publish", "payment.succeeded", "--data", '{"member_id": "M1", "name": "B", "phone": "0811 4040 7", "amount": 5}'],
     "(invalid_phone): not a valid phone number for region ID: *"),
    (["send-test", "08114040707", "--template", "nope"], "(template_missing): template 'nope' does not exist"),
    (["send-test", "08114040707", "--template", "payment_link", "--var", "name=Budi"],
     "(template_error): template cannot render: 'amount' is undefined"),
    (["send-test", "12"], "(invalid_phone): not a valid phone number for region ID: *"),
    (["publish", "notification.requested", "--data",
      '{"phone": "08114040707", "template": "test_message", "variables": {"sent_at": "x"}, "broadcast_id": 999999}'],
     "(invalid_data): notification.requested data: broadcast_id: no broadcast 999999"),
])
def test_publishing_by_hand_refuses_what_the_notifier_would_park_with_its_reason(stack, sessions, args, expected):
    declare(stack.settings)
    line = refused(run_cli(stack, *args))
    assert f"the notifier would park this event {expected}" in line
    assert "0811 4040 7" not in line and not line.endswith("ID: ")  # a bad number is shown masked, never empty
    assert queue_depth(stack.settings.amqp_url, Topology(stack.settings.namespace).notifier_queue) == 0


def test_publish_no_check_still_publishes_a_bad_event_for_the_notifier_to_park(stack, sessions):
    stack.start("notifier")
    stack.cli("publish", "member.registered", "--data", '{"phone": "08114040707"}', "--no-check")
    [parked] = wait_until(lambda: dead_events(sessions), 20, "the parked event")
    assert parked.reason == "invalid_data"


@pytest.fixture
def provider() -> Iterator[ProviderProcess]:
    """Tests that measure gaps: the provider in its own process (see tests/support/provider_process.py)."""
    running = ProviderProcess()
    yield running
    running.close()


def test_an_urgent_text_goes_before_waiting_messages_and_keeps_the_gap(stack, publisher, provider, sessions, settings):
    stack.settings = settings.with_(send_gap_seconds=1.5)
    stack.start("notifier")
    stack.start("sender", WHATSAPP_API_BASE_URL=provider.url)
    # Given six welcomes waiting behind a 1.5 s gap
    for i in range(6):
        publisher.publish("member.registered", member(i))
    provider.wait_for_calls(1)
    # When an operator sends an urgent text
    sent = json.loads(stack.cli("send-test", "0811 4040 707", "--text", "Server maintenance at 22:00", "--json"))
    assert sent["messages"] == [{"template": TEXT_TEMPLATE, "priority": "high", "recipient": "6281******07"}]
    sent_before = len(provider.calls())
    calls = provider.wait_for_calls(7, timeout=40)
    # Then it is the next call (or the one after, if that slot was being chosen as it arrived),
    # ahead of the welcomes still waiting, and a gap after the previous call
    urgent = [c["body"] for c in calls].index("Server maintenance at 22:00")
    assert urgent <= sent_before + 1 and urgent < len(calls) - 1
    assert min(gaps(calls)) >= 1.5 - CLOCK_NOISE


def test_pause_holds_sending_without_stopping_processes_and_resume_restarts_it(stack, publisher, provider,
                                                                            sessions, settings):
    stack.settings = settings.with_(send_gap_seconds=0.5)
    stack.start("notifier")
    sender = stack.start("sender", WHATSAPP_API_BASE_URL=provider.url)
    stack.cli("pause", "--reason", "provider maintenance")
    status = json.loads(stack.cli("status", "--json"))["sender"]
    assert status["paused"] == "by_hand" and "provider maintenance" in status["pause_reason"]
    assert "PAUSED by hand by cli:" in stack.cli("status")
    for i in range(3):
        publisher.publish("member.registered", member(i))
    wait_until(lambda: len(messages(sessions)) == 3, 20, "three queued messages")
    time.sleep(2.5)
    assert provider.calls() == [] and sender.popen.poll() is None
    resumed = json.loads(stack.cli("resume", "--json"))
    assert resumed["lifted"]["kind"] == "by_hand"
    calls = provider.wait_for_calls(3)
    assert min(gaps(calls)) >= 0.5 - CLOCK_NOISE
    assert json.loads(stack.cli("status", "--json"))["sender"]["paused"] is None
    assert "The sender (`wanotify senders list`); 'default' is the environment's number." in " ".join(
        stack.cli("pause", "--help").split())


# --- the demo -----------------------------------------------------------------------------------------------


def test_the_demo_runs_in_a_database_of_its_own_with_its_gap_and_leaves_nothing_behind(stack, sessions, settings):
    # Given a stored gap in the real database, which would slow the demo to a crawl
    stack.cli("settings", "set", "message_delay_seconds", "30")
    demo_namespace = f"{settings.namespace}-demo"
    demo_database = f"{settings.database_url}_demo"
    try:
        done = run_cli(stack, "demo", "--members", "2", "--gap", "0.3", "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout[done.stdout.index("{"):])
        # Then --gap wins, the real database counts nothing, and no demo queue or database is left
        # (the demo's provider runs in its process: under load its clock readings jitter by a few ms)
        assert summary["messages"] == 4 and 0.25 <= summary["min_gap_seconds"] < 5
        assert messages(sessions) == []
        listed = requests.get("http://127.0.0.1:15672/api/queues", auth=("guest", "guest"), timeout=5).json()
        assert [q["name"] for q in listed if q["name"].startswith(demo_namespace + ".")] == []
        with make_engine(settings.database_url.rsplit("/", 1)[0] + "/postgres", pool_size=1).connect() as conn:
            found = conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                                 {"name": demo_database.rsplit("/", 1)[1]}).scalar()
        assert found == 0
    finally:
        drop_database(demo_database)
