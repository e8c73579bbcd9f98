"""The claim in PostgreSQL with a fake budget: the lease, the number's own row, the budget's say."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tests.unit.sender_fakes import FakeGate
from wanotify.consumers.sender import lease, store
from wanotify.consumers.sender.gate import NotDue
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Attempt, MessageLog, SenderState, Status
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority
from wanotify.shared.runtime import load
from wanotify.shared.senders import SenderConfig

NUMBER = SenderConfig("a", "meta", gap_min_seconds=1.0)


def _queued_row(sessions) -> MessageLog:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        row = MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                         recipient="+628114040707", body="hi", priority="normal", status=Status.QUEUED, attempts=0,
                         sender="a")
        session.add(row)
        session.flush()
        return row


def _claim(sessions, settings, row: MessageLog, gate: FakeGate, me: str = "me") -> store.Claim:  # type: ignore[no-untyped-def]
    command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template, sender="a")
    pool = store.Pool("a", 1.0, require_lease=True, gate=gate, config=NUMBER)
    with transaction(sessions) as session:
        return store.claim(session, command, settings, me, lambda gap: 0.0, 0.05, lambda s: load(s, settings),
                           lambda log_id: False, None, pool)


def test_only_the_lease_holder_may_claim_for_a_number(sessions, settings):
    leases = lease.PgLeaseStore(sessions, settings.namespace)
    assert leases.renew(["a"], "other")["a"].held
    row = _queued_row(sessions)
    claim = _claim(sessions, settings, row, FakeGate())
    assert isinstance(claim, store.Wait) and claim.why == "lease"
    leases.release(["a"], "other")
    assert leases.renew(["a"], "me")["a"].held
    assert isinstance(_claim(sessions, settings, row, FakeGate()), store.Go)


def test_a_message_the_budget_holds_back_is_deferred_with_its_reason_and_no_attempt(sessions, settings):
    lease.PgLeaseStore(sessions, settings.namespace).renew(["a"], "me")
    row = _queued_row(sessions)
    gate = FakeGate(NotDue(4.0, "daily_limit"))
    claim = _claim(sessions, settings, row, gate)
    assert claim == store.Deferred(4.0, "daily_limit") and gate.committed == []
    with sessions() as session:
        stored = session.get(MessageLog, row.id)
        assert stored is not None and stored.status == Status.QUEUED and stored.attempts == 0
        assert stored.held_reason == "daily_limit" and stored.held_until is not None
        assert session.scalars(select(Attempt).where(Attempt.log_id == row.id)).all() == []
    # once due, it goes: the budget is told of the call, and the hold is cleared
    gate.not_due = None
    go = _claim(sessions, settings, row, gate)
    assert isinstance(go, store.Go) and go.gap_seconds == 1.0
    assert [(n, r) for n, r, _ in gate.committed] == [("a", "+628114040707")]
    with sessions() as session:
        stored = session.get(MessageLog, row.id)
        assert stored is not None and stored.status == Status.PENDING and stored.held_reason is None
        state = session.get(SenderState, (settings.namespace, "a"))
        assert state is not None and state.last_call_at is not None  # the number's own row keeps its gap
        assert session.get(SenderState, (settings.namespace, "default")) is None
