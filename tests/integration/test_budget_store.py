"""The sending budget against PostgreSQL: the recipient row it creates and locks, the contacts it
counts, the pair-rate back-off it stores."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from wanotify.consumers.sender import budget
from wanotify.consumers.sender.budget import DAILY_LIMIT, PAIR_RATE, RECIPIENT_INTERVAL, Due, NotYet
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Recipient, SenderContact
from wanotify.shared.priority import Priority
from wanotify.shared.senders import SenderConfig

NOW = datetime.now(UTC)


def phone() -> str:
    """A recipient no other test uses (the recipients table is shared by the session)."""
    return "+62" + str(uuid.uuid4().int)[:10]


def sender(limit: int | None = None) -> SenderConfig:
    return SenderConfig(name="b" + uuid.uuid4().hex[:8], provider="fake", daily_limit=limit)


@pytest.fixture
def budget_settings(settings: Settings) -> Settings:
    return settings.with_(recipient_interval_seconds=6.0, daily_window_seconds=100.0)


def check(sessions, who: SenderConfig, to: str, settings: Settings, now: datetime = NOW,  # type: ignore[no-untyped-def]
          priority: Priority = Priority.NORMAL) -> Due | NotYet:
    with transaction(sessions) as session:
        return budget.check(session, sender=who, recipient=to, priority=priority, now=now, settings=settings)


def commit(sessions, who: SenderConfig, to: str, settings: Settings, planned: datetime = NOW) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        budget.commit(session, sender=who, recipient=to, planned=planned, settings=settings)


def test_the_first_check_creates_the_recipient_and_lets_the_message_go(sessions, budget_settings):
    to = phone()
    assert check(sessions, sender(), to, budget_settings) == Due()
    with sessions() as session:
        assert session.get(Recipient, to) is not None


def test_a_call_from_one_sender_holds_the_recipient_for_every_sender(sessions, budget_settings):
    to = phone()
    commit(sessions, sender(), to, budget_settings)
    held = check(sessions, sender(), to, budget_settings, now=NOW + timedelta(seconds=2))
    assert held == NotYet(pytest.approx(4.0), RECIPIENT_INTERVAL)
    assert check(sessions, sender(), to, budget_settings, now=NOW + timedelta(seconds=6.1)) == Due()


def test_an_earlier_planned_call_never_moves_the_last_call_back(sessions, budget_settings):
    to, who = phone(), sender()
    commit(sessions, who, to, budget_settings, planned=NOW)
    commit(sessions, who, to, budget_settings, planned=NOW - timedelta(seconds=30))
    with sessions() as session:
        row = session.get(Recipient, to)
        assert row is not None and row.last_call_at == NOW


def test_a_full_sender_holds_a_new_recipient_until_its_oldest_contact_leaves(sessions, budget_settings):
    who = sender(limit=2)
    for seconds_ago in (30, 10):
        commit(sessions, who, phone(), budget_settings, planned=NOW - timedelta(seconds=seconds_ago))
    assert check(sessions, who, phone(), budget_settings) == NotYet(pytest.approx(70.0), DAILY_LIMIT)
    assert check(sessions, who, phone(), budget_settings, now=NOW + timedelta(seconds=71)) == Due()


def test_a_recipient_counted_again_inside_the_window_keeps_its_first_time(sessions, budget_settings):
    who, to = sender(limit=5), phone()
    commit(sessions, who, to, budget_settings, planned=NOW)
    commit(sessions, who, to, budget_settings, planned=NOW + timedelta(seconds=50))
    assert _first_at(sessions, who, to) == NOW
    # past the window, the recipient counts anew from this call
    later = NOW + timedelta(seconds=150)
    commit(sessions, who, to, budget_settings, planned=later)
    assert _first_at(sessions, who, to) == later


def test_a_reply_inside_the_customer_service_window_is_not_counted(sessions, budget_settings):
    who, to = sender(limit=1), phone()
    with transaction(sessions) as session:
        session.add(Recipient(phone=to, last_inbound_at=NOW - timedelta(hours=1)))
    commit(sessions, who, to, budget_settings)
    assert _first_at(sessions, who, to) is None
    assert check(sessions, who, phone(), budget_settings, now=NOW + timedelta(seconds=7)) == Due()


def test_pair_rate_hits_back_off_four_to_the_x_seconds_and_hold_the_recipient(sessions, budget_settings):
    to = phone()
    waits = []
    now = NOW
    for _ in range(3):
        with transaction(sessions) as session:
            waits.append(budget.pair_rate_hit(session, to, now))
        now += timedelta(seconds=waits[-1])  # the retry comes when the back-off ends, and is hit again
    assert waits == [1.0, 4.0, 16.0]
    assert check(sessions, sender(), to, budget_settings, now=now - timedelta(seconds=10)) == NotYet(
        pytest.approx(10.0), PAIR_RATE)
    with transaction(sessions) as session:
        budget.pair_rate_cleared(session, to)
        assert budget.pair_rate_hit(session, to, now) == 1.0


def test_two_checks_of_one_recipient_are_serialised_by_its_row_lock(sessions, budget_settings):
    """A second sender's check waits for the first's transaction, then sees its call."""
    to, first, second = phone(), sender(), sender()
    checked = threading.Event()
    results: list[Due | NotYet] = []
    with transaction(sessions) as session:
        assert budget.check(session, sender=first, recipient=to, priority=Priority.NORMAL, now=NOW,
                            settings=budget_settings) == Due()

        def other() -> None:
            results.append(check(sessions, second, to, budget_settings, now=NOW + timedelta(seconds=1)))
            checked.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not checked.wait(0.5), "the second check did not wait for the recipient's lock"
        budget.commit(session, sender=first, recipient=to, planned=NOW, settings=budget_settings)
    thread.join(10)
    assert results == [NotYet(pytest.approx(5.0), RECIPIENT_INTERVAL)]


def _first_at(sessions, who: SenderConfig, to: str) -> datetime | None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        row = session.get(SenderContact, (who.name, to))
        return None if row is None else row.first_at


def test_a_call_that_started_late_counts_from_its_actual_start(sessions, budget_settings):
    to, who = phone(), sender()
    planned = datetime.now(UTC) - timedelta(seconds=1)
    commit(sessions, who, to, budget_settings, planned=planned)
    assert _first_at(sessions, who, to) == planned
    # the call really started 0.2 s ago, 0.8 s after its planned start
    with transaction(sessions) as session:
        budget.call_started(session, who.name, to, seconds_ago=0.2)
    with sessions() as session:
        row = session.get(Recipient, to)
        assert row is not None and row.last_call_at is not None
        moved = row.last_call_at
    assert moved > planned + timedelta(seconds=0.75)
    assert _first_at(sessions, who, to) == moved  # the daily window counts from the actual start too
    # an estimate older than the record changes nothing
    with transaction(sessions) as session:
        budget.call_started(session, who.name, to, seconds_ago=30)
    with sessions() as session:
        row = session.get(Recipient, to)
        assert row is not None and row.last_call_at == moved
