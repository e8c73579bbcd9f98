"""The senders' service layer against PostgreSQL and RabbitMQ: validation, secrets never
stored, pauses per sender, disabling, and a drain that moves copies safely."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pika
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.broker import queue_depth
from tests.support.db import messages, sender_state
from wanotify.ops.admin import pausing, sender_drain
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.admin.publishing import check_event, urgent_data
from wanotify.ops.admin.sender_drain import SenderDrain
from wanotify.ops.admin.senders import SenderOptions, add_sender, disable_sender, list_senders, set_sender, show_sender
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import AuditEntry, MessageLog, Recipient, SenderRow
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology, declare_topology

TOKEN = "EAAGm0PX4ZCpsBAKZCe1xTokenValue1234567890abcdef"
META = SenderOptions(provider="meta", phone_number_id="1234567890", token_env="WA_TOKEN_SALES")


@pytest.fixture
def no_senders(sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    _clean(sessions)
    yield sessions
    _clean(sessions)


def _clean(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE senders, recipients, sender_contacts"))


def add(sessions: sessionmaker[Session], name: str, options: SenderOptions = META) -> dict[str, object]:
    with transaction(sessions) as session:
        return add_sender(session, "tester", name, options)


def refused(sessions: sessionmaker[Session], name: str, options: SenderOptions) -> str:
    with pytest.raises(ActionRefused) as caught, transaction(sessions) as session:
        add_sender(session, "tester", name, options)
    return str(caught.value)


def stored_settings(sessions: sessionmaker[Session]) -> list[dict[str, str]]:
    with sessions() as session:
        return [dict(s) for s in session.scalars(select(SenderRow.settings))]


def test_a_token_given_instead_of_a_variable_name_is_refused_and_nothing_is_stored(no_senders) -> None:
    error = refused(no_senders, "sales", SenderOptions(provider="meta", phone_number_id="1", token_env=TOKEN))
    assert "name of an environment variable" in error and "looks like the secret itself" in error
    assert TOKEN not in error and stored_settings(no_senders) == []


@pytest.mark.parametrize(("name", "options", "says"), [
    ("Sales", META, "a sender name is 1-32 of a-z"),
    ("retry", META, "names queues of its own"),
    ("sales", SenderOptions(provider="meta", token_env="WA_TOKEN"), "needs --phone-number-id"),
    ("sales", SenderOptions(provider="gateway", api_key_env="GW_KEY"), "needs --sender-number"),
    ("sales", SenderOptions(provider="gateway", api_key_env="GW_KEY", sender_number="62811", token_env="X"),
     "--token-env is not used by a gateway sender"),
    ("sales", SenderOptions(provider="fake", gap_min=5, gap_max=2), "--gap-max (2) is below --gap-min (5)"),
    ("sales", SenderOptions(provider="fake", gap_min=5), "needs both --gap-min and --gap-max"),
    ("sales", SenderOptions(provider="fake", gap=2, gap_min=1, gap_max=3), "not both"),
    ("sales", SenderOptions(provider="fake", gap=0), "more than 0"),
    ("sales", SenderOptions(provider="fake", daily_limit=0), "1 to 1,000,000"),
    ("sales", SenderOptions(provider="fake", daily_limit=10**20), "1 to 1,000,000"),
    ("sales", SenderOptions(provider="fake", daily_limit=100, daily_reserve=100), "needs a daily limit above it"),
    ("sales", SenderOptions(provider="fake", warmup=(250, 0)), "--warmup takes"),
    ("sales", SenderOptions(provider="fake", base_url="ftp://x"), "--base-url must be an http(s) URL"),
    ("sales", SenderOptions(), "--provider is required"),
])
def test_invalid_senders_are_refused_saying_what_to_fix(no_senders, name, options, says) -> None:
    assert says in refused(no_senders, name, options)
    assert stored_settings(no_senders) == []


def test_a_sender_stores_variable_names_and_show_says_whether_they_are_set_never_their_value(no_senders, settings) -> None:
    add(no_senders, "sales", META)
    assert stored_settings(no_senders) == [{"phone_number_id": "1234567890", "token_env": "WA_TOKEN_SALES"}]
    with no_senders() as session:
        here = show_sender(session, settings, "sales", {"WA_TOKEN_SALES": TOKEN})
        elsewhere = show_sender(session, settings, "sales", {})
    assert here["secret_variables_set"] == {"WA_TOKEN_SALES": True} and TOKEN not in repr(here)
    assert elsewhere["secret_variables_set"] == {"WA_TOKEN_SALES": False}
    assert here["queues"] == [f"{settings.namespace}.send.sales.{p}" for p in ("high", "normal", "low")]


def test_the_first_sender_row_warns_that_the_environments_number_stops_sending(no_senders) -> None:
    warnings = add(no_senders, "sales")["warnings"]
    assert warnings and "drain default --to sales" in warnings[0]  # type: ignore[index]
    assert add(no_senders, "support")["warnings"] == []


def test_set_changes_only_what_is_given_and_validates_the_result(no_senders, settings) -> None:
    add(no_senders, "gw", SenderOptions(provider="gateway", api_key_env="GW_KEY", sender_number="628114040707",
                                        gap_min=30, gap_max=60, daily_limit=1000))
    with transaction(no_senders) as session:
        set_sender(session, "tester", "gw", SenderOptions(daily_limit=2000, warmup=(250, 500)))
    with pytest.raises(ActionRefused, match="--gap-max"), transaction(no_senders) as session:
        set_sender(session, "tester", "gw", SenderOptions(gap_min=90, gap_max=10))
    with no_senders() as session:
        [row] = list_senders(session, settings)
    assert (row["gap_seconds"], row["daily_limit"], row["warmup"]) == ([30, 60], 2000, [250, 500])


def test_a_sender_pause_holds_only_that_sender_for_its_time_and_is_audited(no_senders, settings) -> None:
    add(no_senders, "sales")
    add(no_senders, "support")
    with transaction(no_senders) as session:
        held = pausing.pause(session, settings.namespace, "tester", "template review", "sales", duration=timedelta(hours=2))
    state = sender_state(no_senders, settings.namespace, "sales")
    assert state is not None and "template review" in (state.pause_reason or "") and held.until is not None
    assert sender_state(no_senders, settings.namespace, "support") is None
    with no_senders() as session:
        states = {r["name"]: r["state"] for r in list_senders(session, settings)}
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "sending.pause")
                                .order_by(AuditEntry.id.desc())).first()
    assert states == {"sales": "paused", "support": "active"}
    assert audit is not None and audit.target == {"sender": "sales", "seconds": 7200.0}
    with transaction(no_senders) as session:
        assert pausing.resume(session, settings.namespace, "tester", "sales") is not None


def test_pausing_an_unknown_sender_is_refused_with_the_senders_named(no_senders, settings) -> None:
    add(no_senders, "sales")
    with pytest.raises(ActionRefused, match=r"unknown sender 'default' \(senders: sales\)"), transaction(no_senders) as s:
        pausing.pause(s, settings.namespace, "tester", None, "default")


def test_the_last_active_sender_cannot_be_disabled(no_senders) -> None:
    add(no_senders, "sales")
    add(no_senders, "support")
    with transaction(no_senders) as session:
        assert disable_sender(session, "tester", "sales")["already"] is False
    with pytest.raises(ActionRefused, match="last active sender"), transaction(no_senders) as session:
        disable_sender(session, "tester", "support")


# --- drain -------------------------------------------------------------------------------


def queued(sessions: sessionmaker[Session], n: int, sender: str) -> list[SendCommand]:
    """n log rows of ``sender``, their recipients sticking to it; their copies, priorities mixed."""
    priorities = [Priority.HIGH, Priority.NORMAL, Priority.LOW]
    with transaction(sessions) as session:
        rows = [MessageLog(event_id=f"00000000-0000-4000-8000-{i:012d}", event_type="member.registered",
                           template="welcome_new_member", recipient=f"+62811400{i:04d}", body="hi",
                           priority=priorities[i % 3].value, sender=sender) for i in range(n)]
        session.add_all(rows)
        session.add_all([Recipient(phone=r.recipient, sender=sender) for r in rows])
        session.flush()
        return [SendCommand(r.id, 1, Priority(r.priority), str(r.event_id), r.template, sender=sender) for r in rows]


def publish(settings, commands: list[SendCommand]) -> None:  # type: ignore[no-untyped-def]
    topology = Topology(settings.namespace)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        declare_topology(channel, topology, ("a", "b"))
        for c in commands:
            channel.basic_publish("", topology.send_queue_for(c.sender, c.priority), c.encode())
    finally:
        connection.close()


def copies(settings, sender: str) -> dict[str, list[SendCommand]]:  # type: ignore[no-untyped-def]
    """What waits in each of ``sender``'s queues (read and put back)."""
    topology = Topology(settings.namespace)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    found: dict[str, list[SendCommand]] = {}
    try:
        channel = connection.channel()
        for priority in ("high", "normal", "low"):
            queue = topology.send_queue_for(sender, Priority(priority))
            found[priority] = []
            while (got := channel.basic_get(queue))[0] is not None:
                found[priority].append(SendCommand.decode(got[2]))
        # closing without acks puts every copy back
    finally:
        connection.close()
    return found


@pytest.fixture
def two_senders(no_senders) -> sessionmaker[Session]:  # type: ignore[no-untyped-def]
    add(no_senders, "a", SenderOptions(provider="fake"))
    add(no_senders, "b", SenderOptions(provider="fake"))
    return no_senders  # type: ignore[no-any-return]


def test_a_drain_moves_every_copy_to_the_same_priority_of_the_other_sender_with_rows_and_recipients(
        two_senders, settings) -> None:
    commands = queued(two_senders, 7, "a")
    publish(settings, commands)
    seen: list[tuple[int, int]] = []
    drained = asyncio.run(SenderDrain(settings, "tester").run("a", "b", lambda moved, total: seen.append((moved, total))))
    assert drained.moved == 7 and seen[0] == (0, 7) and seen[-1] == (7, 7)
    assert all(queue_depth(settings.amqp_url, q) == 0 for q in Topology(settings.namespace).send_queues("a"))
    moved = copies(settings, "b")
    assert {p: sorted(c.log_id for c in cs) for p, cs in moved.items()} == {
        p.value: sorted(c.log_id for c in commands if c.priority == p) for p in Priority}
    assert all(c.sender == "b" for cs in moved.values() for c in cs)
    assert {m.sender for m in messages(two_senders)} == {"b"}
    with two_senders() as session:
        assert set(session.scalars(select(Recipient.sender))) == {"b"}
    # A second drain finds nothing left to move
    assert asyncio.run(SenderDrain(settings, "tester").run("a", "b")).moved == 0


def test_a_drain_that_crashes_midway_loses_nothing_and_a_rerun_finishes_it(two_senders, settings, monkeypatch) -> None:
    commands = queued(two_senders, 6, "a")
    publish(settings, [c for c in commands if c.priority == Priority.HIGH] * 1)
    monkeypatch.setattr(sender_drain, "BATCH", 1)
    real_move = sender_drain.move_rows

    def crash_on_second(session, log_ids, source, target):  # type: ignore[no-untyped-def]
        if crash_on_second.calls == 1:  # type: ignore[attr-defined]
            raise RuntimeError("power cut")
        crash_on_second.calls += 1  # type: ignore[attr-defined]
        return real_move(session, log_ids, source, target)
    crash_on_second.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setattr(sender_drain, "move_rows", crash_on_second)
    # When the drain dies after publishing its second copy to b, before acknowledging it on a
    with pytest.raises(RuntimeError, match="power cut"):
        asyncio.run(SenderDrain(settings, "tester").run("a", "b"))
    # Then that copy is still on a (and already on b): nothing is lost
    high = [c.log_id for c in commands if c.priority == Priority.HIGH]
    assert len(copies(settings, "a")["high"]) == 1
    monkeypatch.setattr(sender_drain, "move_rows", real_move)
    assert asyncio.run(SenderDrain(settings, "tester").run("a", "b")).moved == 1
    on_b = [c.log_id for c in copies(settings, "b")["high"]]
    assert sorted(set(on_b)) == sorted(high) and len(on_b) == len(high) + 1  # one duplicate: dropped as stale when sent
    assert {m.sender for m in messages(two_senders) if m.id in high} == {"b"}


def test_a_drain_to_a_disabled_or_unknown_sender_is_refused(two_senders, settings) -> None:
    with transaction(two_senders) as session:
        disable_sender(session, "tester", "b")
    with pytest.raises(ActionRefused, match="'b' is disabled"):
        asyncio.run(SenderDrain(settings, "tester").run("a", "b"))
    with pytest.raises(ActionRefused, match="no sender 'zz' to move to"):
        asyncio.run(SenderDrain(settings, "tester").run("a", "zz"))


def test_a_test_message_may_be_pinned_to_a_sender_and_an_unknown_one_is_refused_before_publishing(
        two_senders, settings) -> None:
    with two_senders() as session:
        _body, [message] = check_event(session, settings, "notification.requested", urgent_data("08114040707", sender="b"))
        assert message.sender == "b"
        with pytest.raises(ActionRefused, match=r"would park this event \(unknown_sender\).*'zz' is not a sender"):
            check_event(session, settings, "notification.requested", urgent_data("08114040707", sender="zz"))
