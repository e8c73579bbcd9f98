"""The sender's record of when its last call started, on the database clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumers.sender import store
from shared.db.engine import transaction
from shared.db.models import SenderState


def _state(sessions, namespace: str) -> SenderState:  # type: ignore[no-untyped-def]
    with sessions() as session:
        state = session.get(SenderState, namespace)
        assert state is not None
        return state


def test_the_actual_start_replaces_an_earlier_planned_start_but_never_moves_it_back(sessions, namespace):
    planned = datetime.now(UTC) - timedelta(seconds=5)
    with transaction(sessions) as session:
        session.add(SenderState(namespace=namespace, sender_id="me", last_call_at=planned))
    # the call really started 1 s ago, later than planned: the record moves forward
    with transaction(sessions) as session:
        store.note_call_started(session, namespace, "me", seconds_ago=1.0)
    moved = _state(sessions, namespace).last_call_at
    assert moved is not None and planned + timedelta(seconds=3.9) < moved
    # an estimate older than what is stored changes nothing
    with transaction(sessions) as session:
        store.note_call_started(session, namespace, "me", seconds_ago=60.0)
    assert _state(sessions, namespace).last_call_at == moved
    # and another sender's record is not touched
    with transaction(sessions) as session:
        store.note_call_started(session, namespace, "someone-else", seconds_ago=0.0)
    assert _state(sessions, namespace).last_call_at == moved
