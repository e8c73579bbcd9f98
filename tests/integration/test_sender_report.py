"""What ``status`` reads of the waiting messages per sender: exact up to a sample's size, and
estimated from the sample beyond it (a million waiting must not cost status half a second)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from tests.support.db import plans_of
from wanotify.shared import sender_report
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog, Status
from wanotify.shared.monitoring import tally_waiting


def _waiting_rows(sessions, sender: str | None, recipients: int, each: int) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        for _recipient in range(recipients):
            phone = f"+62811{uuid.uuid4().int % 10**7:07d}"
            for _ in range(each):
                session.add(MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                                       recipient=phone, body="hi", priority="normal", status=Status.QUEUED, attempts=0,
                                       sender=sender))


@pytest.fixture
def waiting(sessions):  # type: ignore[no-untyped-def]
    _waiting_rows(sessions, None, recipients=10, each=3)  # the default sender: 30 messages to 10 recipients
    _waiting_rows(sessions, "b", recipients=4, each=1)
    return sessions


def test_recipients_are_counted_exactly_while_the_waiting_fit_in_the_sample(waiting):
    with waiting() as session:
        assert sender_report._waiting(session, tally_waiting(session).by_sender) == {"default": (30, 10), "b": (4, 4)}


def test_beyond_the_sample_recipients_are_estimated_from_it(waiting, monkeypatch):
    # The first 15 rows in the table are the default sender's: 5 recipients, 3 messages each.
    monkeypatch.setattr(sender_report, "RECIPIENT_SAMPLE", 15)
    with waiting() as session:
        # 30 messages at 1 recipient per 3 is 10; b, unseen in the sample, counts one per message
        assert sender_report._waiting(session, tally_waiting(session).by_sender) == {"default": (30, 10), "b": (4, 4)}
    monkeypatch.setattr(sender_report, "RECIPIENT_SAMPLE", 6)
    with waiting() as session:
        assert sender_report._waiting(session, tally_waiting(session).by_sender)["default"] == (30, 10)  # 2 recipients in 6 rows


def _many_waiting(sessions, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` queued messages in one statement, none held; the planner's statistics refreshed."""
    with transaction(sessions) as session:
        session.execute(text("""
            INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status, attempts)
            SELECT gen_random_uuid(), 'member.registered', 'welcome_new_member', '+62812' || lpad(i::text, 8, '0'),
                   'hi', 'normal', 'queued', 0
            FROM generate_series(1, :count) AS i"""), {"count": count})
        session.execute(text("ANALYZE whatsapp_logs"))


def test_the_held_messages_are_counted_from_their_index_not_by_reading_every_waiting_one(sessions):
    # Given a large backlog of which one message is held back by the budget
    _many_waiting(sessions, 20_000)
    with transaction(sessions) as session:
        now = session.scalar(select(func.now()))
        held = session.scalars(select(MessageLog).limit(1)).one()
        held.held_until, held.held_reason = now + timedelta(hours=1), "daily_limit"
    with sessions() as session:
        # When status counts the held messages
        counted = sender_report._held(session, now)
        [plan] = plans_of(session, lambda: sender_report._held(session, now))
    # Then it finds the one, through the index of held messages
    assert [(sender, [h.count for h in rows]) for sender, rows in counted.items()] == [("default", [1])]
    assert "ix_whatsapp_logs_held" in plan and "Seq Scan on whatsapp_logs" not in plan

