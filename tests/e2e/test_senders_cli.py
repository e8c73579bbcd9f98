"""`wanotify senders` as an admin meets it on the command line: adding numbers (and the
mistakes it refuses), what it shows and never shows, pauses, disabling, a running notifier
routing to the senders, and a drain."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from tests.e2e.scenario import member
from tests.e2e.test_cli_admin import audit_since, last_audit_id, refused, run_cli
from tests.support.broker import queue_depth
from tests.support.db import messages
from tests.support.processes import wait_until
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog, SenderRow
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

NORMAL = Priority.NORMAL
TOKEN = "EAAGm0PX4ZCpsBAKZCe1xTokenValue1234567890abcdef"


@pytest.fixture
def pool(stack, sessions) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The stack with no sender rows before and after the test."""
    _clean(sessions)
    yield stack
    _clean(sessions)


def _clean(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE senders, recipients, sender_contacts"))


def senders_json(stack, *args: str, **env: object) -> object:  # type: ignore[no-untyped-def]
    return json.loads(stack.cli("senders", *args, "--json", **env))


def four_messages_on_two_senders(stack, publisher, sessions) -> list[MessageLog]:  # type: ignore[no-untyped-def]
    """Senders a and b, a running notifier, and four new members' welcomes: their rows, once
    each sender's two copies are on its queue."""
    stack.cli("senders", "add", "a", "--provider", "fake")
    stack.cli("senders", "add", "b", "--provider", "fake")
    stack.start("notifier")
    for i in range(4):
        publisher.publish("member.registered", member(i))
    rows = wait_until(lambda: rows if len(rows := messages(sessions)) == 4 else None, 30, "four messages")
    topology, url = Topology(stack.settings.namespace), stack.settings.amqp_url
    # The rows commit before the notifier declares a new sender's queues and publishes to them.
    for sender in ("a", "b"):
        wait_until(lambda s=sender: queue_depth(url, topology.send_queue_for(s, NORMAL), may_be_missing=True) == 2,
                   10, f"{sender}'s two copies")
    return rows


def test_mistakes_are_refused_in_one_line_and_no_secret_reaches_the_database(pool, sessions) -> None:
    token = refused(run_cli(pool, "senders", "add", "sales", "--provider", "meta", "--phone-number-id", "123",
                            "--token-env", TOKEN))
    assert "looks like the secret itself" in token and TOKEN not in token
    assert "needs --phone-number-id" in refused(run_cli(pool, "senders", "add", "sales", "--provider", "meta",
                                                        "--token-env", "WA_TOKEN"))
    assert "--gap-max (1) is below --gap-min (3)" in refused(run_cli(pool, "senders", "add", "sales", "--provider", "fake",
                                                                     "--gap-min", "3", "--gap-max", "1"))
    assert "a sender name is 1-32" in refused(run_cli(pool, "senders", "add", "Sales!", "--provider", "fake"))
    assert "--warmup '250,x' is not a list" in refused(run_cli(pool, "senders", "add", "s", "--provider", "fake",
                                                               "--warmup", "250,x"))
    assert "there is no sender 'nobody'" in refused(run_cli(pool, "senders", "show", "nobody"))
    bad_kind = run_cli(pool, "senders", "add", "sales", "--provider", "whatsapp")
    assert bad_kind.returncode == 2 and "'whatsapp' is not one of" in bad_kind.stderr
    with sessions() as session:
        assert list(session.scalars(select(SenderRow))) == []


def test_an_admin_adds_changes_pauses_and_disables_numbers_and_every_step_is_audited(pool, sessions) -> None:
    first = last_audit_id(sessions)
    added = run_cli(pool, "senders", "add", "sales", "--provider", "meta", "--phone-number-id", "1234567890",
                    "--token-env", "WA_TOKEN_SALES", "--gap-min", "30", "--gap-max", "60", "--daily-limit", "250",
                    "--warmup", "50,100,250")
    assert added.returncode == 0 and "added sender sales" in added.stdout
    assert "drain default --to sales" in added.stderr  # the environment's number stops sending
    pool.cli("senders", "add", "support", "--provider", "fake", "--gap", "0.2")
    pool.cli("senders", "set", "sales", "--daily-limit", "1000", "--daily-reserve", "50")
    # show prints the variable's name and whether it is set here, never the token
    shown = pool.cli("senders", "show", "sales", WA_TOKEN_SALES=TOKEN)
    assert "secret in $WA_TOKEN_SALES: set" in shown and TOKEN not in shown
    view = senders_json(pool, "show", "sales")
    assert view["secret_variables_set"] == {"WA_TOKEN_SALES": False} and view["gap_seconds"] == [30, 60]  # type: ignore[index]
    assert (view["daily_limit"], view["daily_reserve"], view["daily_limit_today"]) == (1000, 50, 50)  # type: ignore[index]
    # pause one sender for a while, with a reason; the other stays active
    paused = senders_json(pool, "pause", "sales", "--for", "2h", "--reason", "quality review")
    assert paused["until"] is not None and "quality review" in paused["reason"]  # type: ignore[index]
    states = {r["name"]: r["state"] for r in senders_json(pool, "list")}  # type: ignore[attr-defined, index]
    assert states == {"sales": "paused", "support": "active"}
    assert "sender sales resumed" in pool.cli("senders", "resume", "sales")
    assert "sales is now disabled" in pool.cli("senders", "disable", "sales")
    assert "last active sender" in refused(run_cli(pool, "senders", "disable", "support"))
    assert "is not a" not in pool.cli("senders", "set", "sales", "--enable")
    actions = [(e.action, e.target.get("sender") if e.target else None) for e in audit_since(sessions, first)]
    assert actions == [("sender.add", "sales"), ("sender.add", "support"), ("sender.set", "sales"),
                       ("sending.pause", "sales"), ("sending.resume", "sales"), ("sender.disable", "sales"),
                       ("sender.set", "sales")]


def test_the_old_pause_command_reaches_any_sender(pool, sessions) -> None:
    pool.cli("senders", "add", "sales", "--provider", "fake")
    held = json.loads(pool.cli("pause", "--sender", "sales", "--reason", "by hand", "--json"))
    assert held["sender"] == "sales" and held["paused"] is True
    assert "unknown sender 'default'" in refused(run_cli(pool, "pause"))  # no such row once senders are rows
    assert json.loads(pool.cli("resume", "--sender", "sales", "--json"))["lifted"] is not None


def test_a_running_notifier_spreads_new_recipients_over_the_senders_and_a_drain_moves_one_senders_queue(
        pool, publisher, sessions) -> None:
    rows = four_messages_on_two_senders(pool, publisher, sessions)
    assert sorted(m.sender for m in rows) == ["a", "a", "b", "b"]
    topology, url = Topology(pool.settings.namespace), pool.settings.amqp_url
    # Given b is disabled, when its queue is drained to a, a holds all four and the rows say so
    pool.cli("senders", "disable", "b")
    drained = senders_json(pool, "drain", "b", "--to", "a")
    assert drained["moved"] == 2  # type: ignore[index]
    assert queue_depth(url, topology.send_queue_for("a", NORMAL)) == 4
    assert queue_depth(url, topology.send_queue_for("b", NORMAL)) == 0
    assert {m.sender for m in messages(sessions)} == {"a"}


def test_a_pause_of_no_time_or_of_centuries_is_refused_and_status_shows_a_timed_pauses_end(pool) -> None:
    pool.cli("senders", "add", "sales", "--provider", "fake")
    # A script passing --for "${N}s" with N=0 must not stop the number until someone notices
    assert "a pause needs a duration above 0" in refused(run_cli(pool, "senders", "pause", "sales", "--for", "0s"))
    huge = run_cli(pool, "senders", "pause", "sales", "--for", "9999999999d")
    assert huge.returncode == 2 and "more than ten years" in huge.stderr and "Traceback" not in huge.stderr
    assert senders_json(pool, "list")[0]["state"] == "active"  # type: ignore[index]
    pool.cli("senders", "pause", "sales", "--for", "2h", "--reason", "quality review")
    line = next(x for x in pool.cli("status").splitlines() if "quality review" in x)
    assert "paused until 20" in line and " UTC: " in line and "until resumed" not in line


def test_queue_clear_cancels_the_messages_and_empties_every_senders_queues(
        pool, publisher, sessions) -> None:
    four_messages_on_two_senders(pool, publisher, sessions)
    topology, url = Topology(pool.settings.namespace), pool.settings.amqp_url
    # When the admin confirms the four waiting messages
    cleared = run_cli(pool, "queue", "clear", stdin="y\n")
    assert cleared.returncode == 0 and "Cancel the 4 message(s)" in cleared.stderr
    assert "messages cancelled: 4, copies dropped: 4" in cleared.stdout
    assert [queue_depth(url, topology.send_queue_for(s, NORMAL)) for s in ("a", "b")] == [0, 0]
    assert {m.status for m in messages(sessions)} == {"cancelled"}
