"""The notifier and cancelled broadcasts: a row that reaches it after `broadcast cancel` is
logged cancelled, never queued."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from tests.support.db import messages
from wanotify.consumers.notifier.planning import plan_event
from wanotify.consumers.notifier.store import load_catalog, write_batch
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Broadcast, MessageLog


@pytest.fixture
def broadcasts(sessions):  # type: ignore[no-untyped-def]
    """Two broadcasts: (running id, cancelled id)."""
    with transaction(sessions) as session:
        running = Broadcast(key=uuid.uuid4().hex, name="a.csv", template="test_message")
        cancelled = Broadcast(key=uuid.uuid4().hex, name="b.csv", template="test_message", cancelled_at=datetime.now(UTC))
        session.add_all([running, cancelled])
        session.flush()
        ids = (running.id, cancelled.id)
    yield ids
    with transaction(sessions) as session:
        session.execute(delete(MessageLog).where(MessageLog.broadcast_id.in_(ids)))
        session.execute(delete(Broadcast).where(Broadcast.id.in_(ids)))


def row_of(broadcast_id: int, phone: str) -> bytes:
    data = {"phone": phone, "template": "test_message", "priority": "low", "variables": {"sent_at": "x"},
            "broadcast_id": broadcast_id}
    return json.dumps({"event_id": str(uuid.uuid4()), "event_type": "notification.requested",
                       "occurred_at": "2026-11-22T10:00:00Z", "data": data}).encode()


def test_a_row_of_a_cancelled_broadcast_is_logged_cancelled_and_never_queued(sessions, broadcasts) -> None:
    running, cancelled = broadcasts
    with transaction(sessions) as session:
        catalog = load_catalog(session)
        plans = [plan_event(row_of(running, "08114040701"), catalog, "ID"),
                 plan_event(row_of(cancelled, "08114040702"), catalog, "ID")]
        result = write_batch(session, plans)
    rows = {m.broadcast_id: m for m in messages(sessions) if m.broadcast_id in broadcasts}
    assert rows[running].status == "queued"
    assert (rows[cancelled].status, rows[cancelled].error_code) == ("cancelled", "broadcast_cancelled")
    assert f"broadcast {cancelled} was cancelled" in (rows[cancelled].last_error or "")
    assert [c.log_id for c in result.to_publish] == [rows[running].id]


def plain(phone: str) -> bytes:
    data = {"phone": phone, "template": "test_message", "variables": {"sent_at": "x"}}
    return json.dumps({"event_id": str(uuid.uuid4()), "event_type": "notification.requested",
                       "occurred_at": "2026-11-22T10:00:00Z", "data": data}).encode()


def test_a_row_of_a_broadcast_that_does_not_exist_is_parked_as_invalid_data_and_its_batch_is_written(
        sessions, broadcasts) -> None:
    running, _cancelled = broadcasts
    unknown = max(broadcasts) + 1000
    with transaction(sessions) as session:
        catalog = load_catalog(session)
        plans = [plan_event(row_of(running, "08114040701"), catalog, "ID"),
                 plan_event(row_of(unknown, "08114040702"), catalog, "ID"),
                 plan_event(plain("08114040703"), catalog, "ID")]
        result = write_batch(session, plans)  # was: IntegrityError (whatsapp_logs_broadcast_id_fkey) for all three
    assert sorted(m.recipient for m in messages(sessions)) == ["+628114040701", "+628114040703"]
    parked = plans[1].parked
    assert parked is not None and not plans[1].messages and list(result.dead_ids) == [1]
    assert (parked.reason, parked.event_type) == ("invalid_data", "notification.requested")
    assert parked.detail == f"notification.requested data: broadcast_id: no broadcast {unknown}"
    assert parked.event_id == json.loads(plans[1].body)["event_id"]
