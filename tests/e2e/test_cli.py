"""The command line as an admin uses it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.e2e.scenario import member
from tests.support.broker import queue_depth
from tests.support.db import messages
from tests.support.processes import run_wanotify, wait_until
from tests.support.raw import publish_raw
from wanotify.shared.events import build_envelope
from wanotify.shared.topology import Topology


def run_cli(stack, *args: str, **env: object) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return run_wanotify(args, stack.env(**env))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's only output: one ``Error: …`` line on stderr, no traceback, nothing on stdout."""
    assert (done.stdout, done.stderr.count("\n")) == ("", 1), done.stdout + done.stderr
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
    return done.stderr.strip()


def test_migrate_is_safe_to_run_again_and_keeps_edited_templates(stack):
    stack.cli("templates", "set", "account_activated", "--body", "Akun {{ name }} aktif.")
    try:
        again = json.loads(stack.cli("migrate", "--json"))
        assert again == {"database_created": False, "schema": "up to date", "templates_added": 0, "rules_added": 0}
        assert json.loads(stack.cli("templates", "show", "account_activated", "--json"))["body"] == "Akun {{ name }} aktif."
    finally:
        original = "Halo {{ name }}, akun Anda ({{ member_id }}) sekarang aktif."
        stack.cli("templates", "set", "account_activated", "--body", original)


def test_templates_are_listed_previewed_and_checked_before_saving(stack):
    before = json.loads(stack.cli("templates", "show", "payment_link", "--json"))["body"]
    keys = [t["key"] for t in json.loads(stack.cli("templates", "list", "--json"))]
    assert {"welcome_new_member", "payment_link", "withdrawal_rejected", "test_message"} <= set(keys)
    preview = stack.cli("templates", "preview", "payment_link", "--data", '{"amount": 2500000}')
    assert "Rp 2.500.000" in preview and "Budi" in preview
    broken = run_cli(stack, "templates", "set", "payment_link", "--body", "Halo {{ name ")
    assert broken.returncode != 0 and "syntax error" in broken.stderr
    assert json.loads(stack.cli("templates", "show", "payment_link", "--json"))["body"] == before


def test_settings_are_listed_with_their_source_and_validated_when_set(stack):
    listed = {row["key"]: row for row in json.loads(stack.cli("settings", "list", "--json"))}
    assert listed["message_delay_seconds"] == {**listed["message_delay_seconds"], "value": 0.2, "source": "environment"}
    assert json.loads(stack.cli("settings", "set", "message_delay_seconds", "12", "--json"))["value"] == 12.0
    listed = {row["key"]: row for row in json.loads(stack.cli("settings", "list", "--json"))}
    assert (listed["message_delay_seconds"]["value"], listed["message_delay_seconds"]["source"]) == (12.0, "database")
    bad = run_cli(stack, "settings", "set", "max_retry_attempts", "many")
    assert bad.returncode != 0 and "invalid value for max_retry_attempts" in bad.stderr


def test_publish_prints_the_event_id_and_refuses_bad_data_clearly(stack, fake_provider):
    stack.start("notifier")
    stack.start("sender")
    event_id = stack.cli("publish", "member.registered", "--data", json.dumps(member(1))).strip()
    assert len(event_id) == 36
    fake_provider.wait_for_calls(1, timeout=15)
    not_json = run_cli(stack, "publish", "member.registered", "--data", "{oops")
    assert not_json.returncode == 2 and "--data is not valid JSON" in not_json.stderr


def test_send_test_queues_a_test_message_and_rejects_a_bad_number(stack, fake_provider):
    stack.start("notifier")
    stack.start("sender")
    stack.cli("send-test", "0811 4040 707")
    [call] = fake_provider.wait_for_calls(1, timeout=15)
    assert call["to"] == "628114040707" and "Pesan uji" in call["body"]
    bad = run_cli(stack, "send-test", "12")  # refused with the reason the notifier would park it for
    assert bad.returncode == 1 and one_error_line(bad).endswith("not a valid phone number for region ID: **")


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(retry_delay_seconds=60.0)


def test_retry_failed_sends_failed_messages_now_instead_of_after_the_delay(stack, publisher, fake_provider, sessions):
    stack.start("notifier")
    stack.start("sender")
    fake_provider.fail_next(1, "5xx")
    publisher.publish("member.registered", member(1))
    wait_until(lambda: [m for m in messages(sessions) if m.status == "failed"], 15, "a failed message")
    assert json.loads(stack.cli("retry-failed", "--json")) == {"messages_requeued": 1}
    fake_provider.wait_for_calls(2, timeout=10)  # long before the 60 s retry delay
    wait_until(lambda: messages(sessions)[0].status == "sent", 10, "the message to be sent")


def test_queue_clear_drops_waiting_messages_and_marks_their_rows_cancelled(stack, publisher, fake_provider, sessions,
                                                                           settings):
    stack.settings = settings.with_(send_gap_seconds=60)
    stack.start("notifier")
    stack.start("sender")
    for i in range(4):
        publisher.publish("member.registered", member(i))
    wait_until(lambda: len(messages(sessions)) == 4 and len(fake_provider.calls()) == 1, 15, "one sent, three waiting")
    result = json.loads(stack.cli("queue", "clear", "--yes", "--json"))
    assert result["messages_cancelled"] == 3
    assert sorted(m.status for m in messages(sessions)) == ["cancelled"] * 3 + ["sent"]
    assert sum(queue_depth(settings.amqp_url, name) for name in Topology(settings.namespace).send_queues()) == 0
    assert len(fake_provider.calls()) == 1


def test_dead_purge_drops_parked_items_and_keeps_the_rows_as_cancelled(stack, publisher, fake_provider, sessions,
                                                                       settings):
    stack.start("notifier")
    stack.start("sender")
    fake_provider.fail_next(1, "permanent")
    publisher.publish("member.registered", member(1))
    publisher.publish("member.registered", member(2) | {"phone": "12"})
    wait_until(lambda: len(json.loads(stack.cli("dead", "list", "--json"))) == 2, 15, "two dead letters")
    refused = run_cli(stack, "dead", "purge")
    assert refused.returncode == 2 and "--all" in refused.stderr
    assert json.loads(stack.cli("dead", "purge", "--all", "--kind", "events", "--yes", "--json"))["events_purged"] == 1
    result = json.loads(stack.cli("dead", "purge", "--all", "--yes", "--json"))
    assert result["messages_purged"] == 1 and result["queue_copies_removed"] == 1
    assert json.loads(stack.cli("dead", "list", "--json")) == []
    assert [m.status for m in messages(sessions)] == ["cancelled"]
    topology = Topology(settings.namespace)
    assert queue_depth(settings.amqp_url, topology.send_dead_queue) == 0
    assert queue_depth(settings.amqp_url, topology.events_dead_queue) == 0


def test_settings_take_negative_and_absurd_values_as_values_and_refuse_them_for_their_bounds(stack):
    for raw in ("-1", "inf", "1e308", "nan"):
        refused = run_cli(stack, "settings", "set", "message_delay_seconds", raw)
        assert refused.returncode == 2
        assert one_error_line(refused) == (
            f"Error: invalid value for message_delay_seconds: must be between 0 and 86400, got {raw!r}")
    listed = {row["key"]: row for row in json.loads(stack.cli("settings", "list", "--json"))}
    assert (listed["message_delay_seconds"]["value"], listed["message_delay_seconds"]["source"]) == (0.2, "environment")


def test_a_gap_of_zero_is_stored_with_a_warning_and_reset_returns_to_the_environment(stack):
    zero = run_cli(stack, "settings", "set", "message_delay_seconds", "0", "--json")
    assert zero.returncode == 0 and json.loads(zero.stdout) == {"key": "message_delay_seconds", "value": 0.0}
    assert zero.stderr.startswith("warning: a gap of 0 sends as fast as the provider answers")
    assert "warning" not in run_cli(stack, "settings", "set", "message_delay_seconds", "3").stderr
    reset = json.loads(stack.cli("settings", "reset", "message_delay_seconds", "--json"))
    assert reset == {"key": "message_delay_seconds", "value": 0.2, "source": "environment"}
    listed = {row["key"]: row for row in json.loads(stack.cli("settings", "list", "--json"))}
    assert (listed["message_delay_seconds"]["value"], listed["message_delay_seconds"]["source"]) == (0.2, "environment")
    assert "wanotify retry-failed" in listed["auto_retry_enabled"]["description"]


@pytest.mark.parametrize("role", ["sender", "all"])
def test_sending_refuses_to_start_without_an_explicit_provider(stack, role):
    refused = run_cli(stack, "run", role, WHATSAPP_PROVIDER=None)
    assert refused.returncode == 2
    assert one_error_line(refused).startswith(
        "Error: WHATSAPP_PROVIDER is not set: choose meta, gateway or fake (fake sends nothing)")


@pytest.mark.parametrize("command", [  # pika (publish, status) and aio-pika (retry-failed) clients
    ["publish", "member.registered", "--data", json.dumps(member(1))], ["status"], ["retry-failed"]])
def test_an_unreachable_broker_is_one_line_with_its_password_masked(stack, command):
    port = closed_port()
    done = run_cli(stack, *command, AMQP_URL=f"amqp://guest:s3cret-pw@127.0.0.1:{port}/")
    assert done.returncode == 1
    line = one_error_line(done)
    assert line.startswith(f"Error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:{port}/ (")
    assert line.endswith(") — check AMQP_URL and that RabbitMQ is running")


def test_debug_shows_the_traceback_behind_the_one_line(stack):
    port = closed_port()
    for args, env in [(["--debug", "status"], {}), (["status"], {"LOG_LEVEL": "debug"})]:
        done = run_cli(stack, *args, AMQP_URL=f"amqp://guest:s3cret-pw@127.0.0.1:{port}/", **env)
        assert done.returncode == 1 and "Traceback" in done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: cannot connect to RabbitMQ")
        assert "s3cret-pw" not in done.stderr


def test_an_unusable_or_unmigrated_database_is_one_line_naming_the_fix(stack, settings):
    server = settings.database_url.rsplit("/", 1)[0].replace("postgresql+psycopg2://postgres", "postgres://postgres:pw")
    unmigrated = run_cli(stack, "settings", "list", DATABASE_URL=f"{server}/postgres")
    assert unmigrated.returncode == 1 and one_error_line(unmigrated).endswith("— run `wanotify migrate` first")
    missing = run_cli(stack, "dead", "list", DATABASE_URL=f"{server}/wanotify_never_created")
    assert missing.returncode == 1 and one_error_line(missing).endswith("run `wanotify migrate`, which creates it")
    assert ":***@" in missing.stderr and ":pw@" not in missing.stderr
    down = run_cli(stack, "status", DATABASE_URL=f"postgresql://postgres:pw@127.0.0.1:{closed_port()}/x")
    assert down.returncode == 1 and "cannot connect to PostgreSQL at postgresql+psycopg2://postgres:***@" in down.stderr
    one_error_line(down)


@pytest.mark.parametrize(("variable", "value"), [("DATABASE_URL", "nonsense"), ("AMQP_URL", "http://x")])
def test_an_unparseable_url_is_a_configuration_error(stack, variable, value):
    done = run_cli(stack, "status", **{variable: value})
    assert done.returncode == 2 and one_error_line(done).startswith(f"Error: {variable} must be")


def test_dead_show_masks_the_phone_number_of_a_parked_event(stack, publisher, sessions):
    stack.start("notifier")
    publisher.publish("member.registered", {"member_id": "M-1", "phone": "08114040707"})  # no name: parked
    [parked] = wait_until(lambda: json.loads(stack.cli("dead", "list", "--json")), 15, "a parked event")
    shown = json.loads(stack.cli("dead", "show", parked["id"], "--json"))
    assert json.loads(shown["body"])["data"] == {"member_id": "M-1", "phone": "081******07"}
    text = stack.cli("dead", "show", parked["id"])
    assert "081******07" in text and "8114040707" not in text


def test_events_nested_too_deep_are_parked_as_invalid_data_and_dead_show_prints_them(stack, settings):
    notifier = stack.start("notifier")
    member_event = json.dumps(build_envelope("member.registered", member(1) | {"phone": "08114040707", "x": "DEEP"}))
    requested = json.dumps(build_envelope("notification.requested", {
        "phone": "08114040707", "template": "test_message", "variables": {"sent_at": "now", "x": "DEEP"}}))
    publish_raw(settings.amqp_url, settings.namespace, [
        ("member.registered", member_event.replace('"DEEP"', "[" * 3000 + "]" * 3000).encode()),
        ("notification.requested", requested.replace('"DEEP"', "[" * 900 + "]" * 900).encode())])
    wait_until(lambda: len(json.loads(stack.cli("dead", "list", "--json"))) == 2, 15, "two parked events")
    parked = json.loads(stack.cli("dead", "list", "--json"))
    # Then each is parked for what it is, JSON nested too deep, not "not JSON" or an internal error
    assert [(p["reason"], p["error"].endswith("nests objects and arrays deeper than 32 levels")) for p in parked] == [
        ("invalid_data", True), ("invalid_data", True)]
    # and dead show prints each body down to the limit, its phone number masked
    for row in parked:
        shown = json.loads(stack.cli("dead", "show", row["id"], "--json"))
        assert "…" in shown["body"] and json.loads(shown["body"])["data"]["phone"] == "081******07"
        assert "081******07" in stack.cli("dead", "show", row["id"])
    # and the notifier logged no traceback, and still runs
    assert "Traceback" not in notifier.log() and notifier.popen.poll() is None


def test_status_watch_json_prints_one_compact_object_per_line_without_library_warnings(stack):
    watch = subprocess.Popen([sys.executable, "-m", "wanotify.ops.cli", "status", "--watch", "0.5", "--json"], env=stack.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        lines = [watch.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
    finally:
        watch.terminate()
        _, errors = watch.communicate(timeout=15)
    snapshots = [json.loads(line) for line in lines]
    assert [s["namespace"] for s in snapshots] == [stack.settings.namespace] * 2
    assert all(q["ready"] is None for q in snapshots[0]["queues"])  # the queues do not exist yet
    assert errors == ""  # no pika warnings about the absent queues


def test_a_ca_bundle_that_is_not_there_is_the_number_s_error_in_the_sender_s_log(stack, tmp_path):
    missing = tmp_path / "corporate-ca.pem"
    sender = stack.start("sender", WHATSAPP_PROVIDER="meta", WHATSAPP_API_BASE_URL="https://graph.example.test",
                         WHATSAPP_PHONE_NUMBER_ID="123", WHATSAPP_ACCESS_TOKEN="t0ken", REQUESTS_CA_BUNDLE=str(missing))
    sender.wait_for_log(f"sender default cannot send: TLS settings for graph.example.test cannot be used: "
                        f"Could not find a suitable TLS CA certificate bundle, invalid path: {missing}")
