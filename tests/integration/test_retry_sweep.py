"""The retry sweep: a failed message whose retry copy was lost, or a deferred one whose deferred
copy was, is published again, and a publish that fails leaves it to the next sweep instead of
forgetting it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.db import messages
from wanotify.consumers.providers import FakeProvider
from wanotify.consumers.sender.service import Sender
from wanotify.shared.broker import SendQueuePublisher
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog, Status
from wanotify.shared.messages import SendCommand
from wanotify.shared.metrics import Metrics


class RecordingPublisher(SendQueuePublisher):
    """A publisher that keeps what it was given, or fails like a broker that went away."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.published: list[SendCommand] = []

    async def publish_send(self, command: SendCommand) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.published.append(command)


def _overdue_failed_row(sessions, seconds_late: float) -> int:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        row = MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                         recipient="+628114040707", body="hi", priority="normal", status=Status.FAILED, attempts=1,
                         next_attempt_at=datetime.now(UTC) - timedelta(seconds=seconds_late))
        session.add(row)
        session.flush()
        return row.id


def _deferred_row(sessions, seconds_late: float) -> int:  # type: ignore[no-untyped-def]
    """A message deferred (recipient interval) until ``seconds_late`` ago, never called yet."""
    with transaction(sessions) as session:
        row = MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                         recipient="+628114040707", body="hi", priority="normal", status=Status.QUEUED, attempts=0,
                         held_until=datetime.now(UTC) - timedelta(seconds=seconds_late),
                         held_reason="recipient_interval")
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture
def sender(settings, sessions) -> Sender:  # type: ignore[no-untyped-def]
    return Sender(settings.with_(retry_sweep_seconds=1.0), Metrics(), sessions, FakeProvider())


def test_a_sweep_whose_publish_fails_leaves_the_overdue_retry_for_the_next_sweep(sender, sessions):
    log_id = _overdue_failed_row(sessions, seconds_late=5)
    sender._publisher = RecordingPublisher(fail=True)
    with pytest.raises(ConnectionError):
        asyncio.run(sender.sweep_once())
    [row] = messages(sessions)
    assert row.next_attempt_at is not None  # still overdue: not forgotten
    # the next sweep, with the broker back, publishes it once and then forgets the schedule
    working = sender._publisher = RecordingPublisher(fail=False)
    assert asyncio.run(sender.sweep_once()) == 1
    assert [(c.log_id, c.attempt) for c in working.published] == [(log_id, 2)]
    assert messages(sessions)[0].next_attempt_at is None
    assert asyncio.run(sender.sweep_once()) == 0


def test_a_retry_that_is_not_yet_overdue_by_a_sweep_interval_is_left_to_its_retry_queue(sender, sessions):
    _overdue_failed_row(sessions, seconds_late=0.2)
    sender._publisher = publisher = RecordingPublisher(fail=False)
    assert asyncio.run(sender.sweep_once()) == 0 and publisher.published == []


def test_a_deferred_message_whose_copy_was_lost_is_published_again_once(sender, sessions):
    lost = _deferred_row(sessions, seconds_late=5)
    _deferred_row(sessions, seconds_late=0.2)  # its copy may still be on its way back: left alone
    sender._publisher = publisher = RecordingPublisher(fail=False)
    assert asyncio.run(sender.sweep_once()) == 1
    assert [(c.log_id, c.attempt) for c in publisher.published] == [(lost, 1)]
    held = {m.id: m.held_until for m in messages(sessions)}
    assert held[lost] is None and asyncio.run(sender.sweep_once()) == 0
