"""Routing against PostgreSQL: sticky recipients, pins, the least-loaded first contact, a
disabled sender's recipients moving, two notifiers agreeing, and replays re-routed."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.db import messages
from wanotify.consumers.notifier.planning import plan_event
from wanotify.consumers.notifier.routing import (
    SenderNames,
    _store_choices,
    load_sender_names,
    recipient_senders,
    reroute_copies,
)
from wanotify.consumers.notifier.store import BatchResult, load_catalog, write_batch
from wanotify.ops.admin.dead_letters import DeadFilter, take_for_replay
from wanotify.shared.db.copies import failed_copies
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Broadcast, MessageLog, Recipient, Rule, SenderRow, Status

PHONE = "+628114040707"


@pytest.fixture
def pool(sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """Three senders a, b, c, and no recipient known yet."""
    _clean(sessions)
    with transaction(sessions) as session:
        session.add_all([SenderRow(name=n, provider="fake", settings={}) for n in ("a", "b", "c")])
    yield sessions
    _clean(sessions)


def _clean(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE senders, recipients, sender_contacts"))
        session.execute(update(Rule).values(sender=None))


def event(event_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"event_id": str(uuid.uuid4()), "event_type": event_type,
                       "occurred_at": "2026-11-22T10:00:00Z", "data": data}).encode()


def member(phone: str = "08114040707") -> bytes:
    return event("member.registered", {"member_id": "M-1", "name": "Budi", "phone": phone})


def requested(phone: str = "08114040707", **extra: Any) -> bytes:
    return event("notification.requested", {"phone": phone, "template": "test_message", "variables": {"sent_at": "x"}}
                 | extra)


def write(sessions: sessionmaker[Session], bodies: list[bytes]) -> BatchResult:
    with transaction(sessions) as session:
        catalog = load_catalog(session)
        return write_batch(session, [plan_event(body, catalog, "ID") for body in bodies], "marketing", catalog.senders)


def sticky(sessions: sessionmaker[Session], phone: str = PHONE) -> str | None:
    with sessions() as session:
        return session.scalar(select(Recipient.sender).where(Recipient.phone == phone))


def test_without_sender_rows_messages_go_to_default_and_no_recipient_row_is_written(sessions) -> None:
    _clean(sessions)
    result = write(sessions, [member()])
    assert [c.sender for c in result.to_publish] == ["default"] and [m.sender for m in messages(sessions)] == ["default"]
    assert sticky(sessions) is None


def test_a_recipient_sticks_to_the_sender_chosen_on_first_contact(pool) -> None:
    first = write(pool, [member()])
    [chosen] = [c.sender for c in first.to_publish]
    assert sticky(pool) == chosen
    # Given the chosen sender is now by far the busiest
    write(pool, [member(f"0811404{i:04d}") for i in range(6)])
    with transaction(pool) as session:
        session.execute(update(MessageLog).values(sender=chosen))
    # When the recipient gets another message, it still comes from their number
    again = write(pool, [member()])
    assert [c.sender for c in again.to_publish] == [chosen]


def test_first_contact_goes_to_the_sender_with_the_fewest_waiting_messages(pool) -> None:
    write(pool, [member(f"0811404{i:04d}") for i in range(2)])
    with transaction(pool) as session:  # a and b have messages waiting; c has none
        ids = list(session.scalars(select(MessageLog.id).order_by(MessageLog.id)))
        session.execute(update(MessageLog).where(MessageLog.id == ids[0]).values(sender="a"))
        session.execute(update(MessageLog).where(MessageLog.id == ids[1]).values(sender="b"))
    result = write(pool, [member("08129999999")])
    assert [c.sender for c in result.to_publish] == ["c"] and sticky(pool, "+628129999999") == "c"


def test_a_burst_of_new_recipients_is_spread_evenly_and_the_messages_carry_their_sender(pool) -> None:
    result = write(pool, [member(f"0811404{i:04d}") for i in range(30)])
    by_sender = {s: [c for c in result.to_publish if c.sender == s] for s in "abc"}
    assert {s: len(v) for s, v in by_sender.items()} == {"a": 10, "b": 10, "c": 10}
    rows = {m.id: m.sender for m in messages(pool)}
    assert all(rows[c.log_id] == c.sender for c in result.to_publish)


def test_a_pin_in_the_event_wins_and_leaves_the_recipients_own_sender_alone(pool) -> None:
    [own] = [c.sender for c in write(pool, [member()]).to_publish]
    pinned = next(s for s in "abc" if s != own)
    result = write(pool, [requested(sender=pinned)])
    assert [c.sender for c in result.to_publish] == [pinned] and sticky(pool) == own


def test_a_rule_pins_its_messages_while_its_sender_is_active(pool) -> None:
    with transaction(pool) as session:
        session.execute(update(Rule).where(Rule.event_type == "member.registered").values(sender="b"))
    assert [c.sender for c in write(pool, [member("08120000001")]).to_publish] == ["b"]
    with transaction(pool) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "b").values(disabled_at=func.now()))
    # b disabled: the rule's pin falls through to the recipient's own sender, never parks the event
    assert [c.sender for c in write(pool, [member("08120000002")]).to_publish] in (["a"], ["c"])


def test_an_event_pinning_a_disabled_sender_is_parked_not_queued(pool) -> None:
    with transaction(pool) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "c").values(disabled_at=func.now()))
    result = write(pool, [requested(sender="c")])
    assert result.to_publish == [] and len(result.dead_ids) == 1 and messages(pool) == []


def test_a_disabled_senders_recipients_move_to_another_sender_for_new_messages(pool) -> None:
    [own] = [c.sender for c in write(pool, [member()]).to_publish]
    with transaction(pool) as session:
        session.execute(update(SenderRow).where(SenderRow.name == own).values(disabled_at=func.now()))
    [moved] = [c.sender for c in write(pool, [member()]).to_publish]
    assert moved != own and sticky(pool) == moved
    assert [m.sender for m in messages(pool)] == [own, moved]  # the first message keeps its sender


def test_a_broadcast_id_is_stored_with_the_message(pool) -> None:
    with transaction(pool) as session:
        broadcast = Broadcast(key=uuid.uuid4().hex, name="members.csv", template="test_message")
        session.add(broadcast)
        session.flush()
        broadcast_id = broadcast.id
    try:
        write(pool, [requested(broadcast_id=broadcast_id, priority="low")])
        assert [m.broadcast_id for m in messages(pool)] == [broadcast_id]
    finally:
        with transaction(pool) as session:
            session.execute(text("DELETE FROM whatsapp_logs; DELETE FROM broadcasts WHERE id = :id"), {"id": broadcast_id})


def test_two_notifiers_routing_the_same_new_recipient_agree(pool) -> None:
    names = SenderNames(("a", "b", "c"), frozenset(), from_rows=True)
    answers: dict[str, str] = {}
    first = pool()
    with first.begin():
        # The first notifier stores 'a' and has not committed yet...
        assert _store_choices(first, {PHONE: "a"}, names) == {PHONE: "a"}

        def second() -> None:  # ...when the second one, having chosen 'b', stores its choice
            with transaction(pool) as session:
                answers.update(_store_choices(session, {PHONE: "b"}, names))

        racing = threading.Thread(target=second)
        racing.start()
        racing.join(0.5)
        assert racing.is_alive()  # it waits for the first one's row
    racing.join(10)
    assert answers == {PHONE: "a"} and sticky(pool) == "a"


def test_a_replayed_dead_message_of_a_disabled_sender_goes_out_from_the_recipients_new_sender(pool) -> None:
    write(pool, [member()])
    with transaction(pool) as session:
        session.execute(update(MessageLog).values(status=Status.DEAD, sender="a", attempts=4))
        session.execute(update(Recipient).values(sender="a"))
        session.execute(update(SenderRow).where(SenderRow.name == "a").values(disabled_at=func.now()))
    with transaction(pool) as session:
        plan = take_for_replay(session, DeadFilter(kind="messages"), 10)
    [command] = plan.messages
    assert command.sender in ("b", "c") and messages(pool)[0].sender == command.sender == sticky(pool)


def test_a_replayed_dead_message_keeps_its_active_sender(pool) -> None:
    write(pool, [member()])
    with transaction(pool) as session:
        session.execute(update(MessageLog).values(status=Status.DEAD, sender="c", attempts=4))
    with transaction(pool) as session:
        [command] = take_for_replay(session, DeadFilter(kind="messages"), 10).messages
    assert command.sender == "c"


def test_the_sender_names_come_from_one_query_with_disabled_ones_apart(pool) -> None:
    with transaction(pool) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "b").values(disabled_at=func.now()))
        names = load_sender_names(session)
        assert (names.active, names.disabled, names.from_rows) == (("a", "c"), frozenset({"b"}), True)
        assert recipient_senders(session, {PHONE: 1}, names)[PHONE] in ("a", "c")


def test_retrying_a_failed_message_of_a_disabled_sender_sends_it_from_the_recipients_new_sender(pool) -> None:
    write(pool, [member(), member("08120000009")])
    with transaction(pool) as session:
        session.execute(update(MessageLog).values(status=Status.FAILED, attempts=1))
        session.execute(update(MessageLog).where(MessageLog.recipient == PHONE).values(sender="a"))
        session.execute(update(MessageLog).where(MessageLog.recipient != PHONE).values(sender="c"))
        session.execute(update(SenderRow).where(SenderRow.name == "a").values(disabled_at=func.now()))
    with transaction(pool) as session:
        commands = reroute_copies(session, [c.command for c in failed_copies(session, overdue_seconds=None)])
    senders = {m.recipient: m.sender for m in messages(pool)}
    assert senders[PHONE] == "b" and senders["+628120000009"] == "c"  # b: the least loaded; c: still active
    assert sorted(c.sender for c in commands) == ["b", "c"]
