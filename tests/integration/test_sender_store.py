"""The sender's record of when its last call started, on the database clock."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from bench.counted import RoundTrips
from tests.support.db import messages
from wanotify.consumers.sender import budget, lease, liveness, store
from wanotify.consumers.sender.choice import Rules
from wanotify.consumers.sender.claims import PgClaimStore
from wanotify.consumers.sender.gate import BudgetGate
from wanotify.consumers.sender.lease import PgLeaseStore
from wanotify.consumers.sender.outcomes import CallRecord, SingleCall
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Attempt, MessageLog, Recipient, SenderContact, SenderProcess, SenderState, Status
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority
from wanotify.shared.runtime import load
from wanotify.shared.senders import environment_sender


def _state(sessions, namespace: str) -> SenderState:  # type: ignore[no-untyped-def]
    with sessions() as session:
        state = session.get(SenderState, (namespace, "default"))
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


# --- claims: a pending message is resent only when its claimant is gone ---------------------

def _pending_row(sessions, claimed_by: str) -> MessageLog:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        row = MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                         recipient="+628114040707", body="hi", priority="normal", status=Status.PENDING,
                         attempts=1, claimed_by=claimed_by)
        session.add(row)
        session.flush()
        return row


def _process(sessions, sender_id: str, *, pid: int | None = None, host: str | None = None,  # type: ignore[no-untyped-def]
             seen_ago: float = 0.0, stopped: bool = False) -> None:
    with transaction(sessions) as session:
        session.add(SenderProcess(
            sender_id=sender_id, host=host or socket.gethostname(), pid=pid or os.getpid(),
            seen_at=datetime.now(UTC) - timedelta(seconds=seen_ago),
            stopped_at=datetime.now(UTC) if stopped else None))


def _claim_copy(sessions, settings, row: MessageLog, *, sender_id: str = "me",  # type: ignore[no-untyped-def]
                in_flight: bool = False) -> store.Claim:
    command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template)
    with transaction(sessions) as session:
        return store.claim(session, command, settings, sender_id, lambda gap: 0.0, 0.025,
                           lambda s: load(s, settings), lambda log_id: in_flight)


def test_a_copy_of_a_message_whose_claimant_is_alive_waits_instead_of_resending(sessions, settings):
    _process(sessions, "other")
    row = _pending_row(sessions, "other")
    claim = _claim_copy(sessions, settings, row)
    assert isinstance(claim, store.Wait) and claim.why == "claimed"


@pytest.mark.parametrize("how", ["stopped", "silent", "pid gone", "never registered"])
def test_a_copy_of_a_message_whose_claimant_died_mid_call_is_parked_not_sent_again(sessions, settings, how: str):
    if how == "stopped":
        _process(sessions, "other", stopped=True)
    elif how == "silent":
        _process(sessions, "other", host="elsewhere", seen_ago=liveness.DEAD_AFTER.total_seconds() + 1)
    elif how == "pid gone":
        _process(sessions, "other", pid=_a_pid_that_is_gone())
    row = _pending_row(sessions, "other")
    claim = _claim_copy(sessions, settings, row)
    assert isinstance(claim, store.Refused) and claim.refusal.code == store.OUTCOME_UNKNOWN
    with sessions() as session:
        parked = session.get(MessageLog, row.id)
        assert parked is not None and (parked.status, parked.error_code) == (Status.DEAD, "outcome_unknown")
        assert "may have delivered it" in (parked.last_error or "")


def test_a_claimant_elsewhere_counts_as_alive_while_its_heartbeat_is_fresh(sessions, settings):
    _process(sessions, "other", host="elsewhere", pid=_a_pid_that_is_gone())
    row = _pending_row(sessions, "other")
    assert isinstance(_claim_copy(sessions, settings, row), store.Wait)


def test_this_process_waits_for_its_own_earlier_delivery_of_the_message_but_calls_for_a_forgotten_claim(
        sessions, settings):
    row = _pending_row(sessions, "me")
    assert isinstance(_claim_copy(sessions, settings, row, in_flight=True), store.Wait)
    claim = _claim_copy(sessions, settings, row, in_flight=False)
    assert isinstance(claim, store.Go) and claim.ambiguous


def _a_pid_that_is_gone() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- what is recorded after a call cannot fail on its data ----------------------------------

def test_a_success_with_an_overlong_provider_id_is_recorded(sessions, settings):
    row = _pending_row(sessions, "me")
    claim = _claim_copy(sessions, settings, row, in_flight=False)
    assert isinstance(claim, store.Go)
    command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template)
    with transaction(sessions) as session:
        store.record_sent(session, command, claim.attempt_id, "wamid." + "x" * 500)
    [stored] = messages(sessions)
    assert stored.status == "sent" and stored.provider_message_id == ("wamid." + "x" * 500)[:200]


def test_a_failure_with_nul_characters_and_an_overlong_code_is_recorded(sessions, settings):
    row = _pending_row(sessions, "me")
    claim = _claim_copy(sessions, settings, row, in_flight=False)
    assert isinstance(claim, store.Go)
    command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template)
    with transaction(sessions) as session:
        store.record_failure(session, command, claim.attempt_id, Status.FAILED, "bad\x00reply" + "!" * 5000,
                             "meta_" + "9" * 80, retry_in=1.0)
    [stored] = messages(sessions)
    assert stored.status == "failed" and stored.last_error is not None and stored.last_error.startswith("badreply")
    assert len(stored.last_error) == store.ERROR_CHARS and stored.error_code == ("meta_" + "9" * 80)[:40]


# --- the usual success is recorded in one round trip ------------------------------------------

def _recorded(sessions, settings, gate, command: SendCommand, recipient: str, record: CallRecord,  # type: ignore[no-untyped-def]
              provider_id: str) -> RoundTrips:
    """Record the call's success through a claim store with ``gate``; the round trips it took."""
    trips = RoundTrips()
    trips.install()
    try:
        PgClaimStore(settings, sessions, "me", gate, lambda: load(sessions(), settings)).record_sent(
            command, recipient, record, provider_id)
    finally:
        trips.uninstall()
    return trips


def test_the_success_of_a_single_call_is_one_round_trip_that_moves_every_record_to_the_actual_start(
        sessions, settings, monkeypatch):
    gate = BudgetGate(settings)
    row = _pending_row(sessions, "me")
    row.recipient = f"+62811{uuid.uuid4().int % 10**7:07d}"  # its own: no reply, window or count from other tests
    with transaction(sessions) as session:
        session.execute(update(MessageLog).where(MessageLog.id == row.id).values(
            status=Status.QUEUED, attempts=0, recipient=row.recipient))
        budget.lock_recipient(session, row.recipient).pair_backoff_level = 2
    command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template)
    with transaction(sessions) as session:
        claim = store.claim(session, command, settings, "me", lambda gap: 0.0, 0.025, lambda s: load(s, settings),
                            lambda log_id: False, pool=store.Pool(gate=gate, config=environment_sender(settings)))
    assert isinstance(claim, store.Go)
    planned = _state(sessions, settings.namespace).last_call_at
    assert planned is not None
    time.sleep(0.3)  # the call starts late: 0.25 s after its planned start
    record = CallRecord(lambda session: claim.attempt_id, "text", single=SingleCall(claim.attempt_id, "default",
                                                                                     time.monotonic() - 0.05))
    # Resetting a connection's isolation level is a round trip RoundTrips cannot see (psycopg2's own).
    dialect = type(sessions.kw["bind"].dialect)
    resets: list[object] = []
    reset = dialect.reset_isolation_level
    monkeypatch.setattr(dialect, "reset_isolation_level", lambda self, dbapi: resets.append(dbapi) or reset(self, dbapi))
    trips = _recorded(sessions, settings, gate, command, row.recipient, record, "wamid.one")

    assert trips.total == 1 and not resets, (trips.snapshot(), resets)
    started = _state(sessions, settings.namespace).last_call_at
    assert started is not None and started >= planned + timedelta(seconds=0.2)
    with sessions() as session:
        recipient = session.get(Recipient, row.recipient)
        contact = session.get(SenderContact, ("default", row.recipient))
        attempt = session.get(Attempt, claim.attempt_id)
        logged = session.get(MessageLog, row.id)
    assert recipient is not None and recipient.last_call_at == started and recipient.pair_backoff_level == 0
    assert contact is not None and contact.first_at == started
    assert attempt is not None and attempt.outcome == "sent" and attempt.finished_at is not None
    assert logged is not None and logged.status == Status.SENT and logged.provider_message_id == "wamid.one"


class OwnTransactionGate(BudgetGate):
    """A gate with no part for the success's one statement: its methods run in the record's transaction."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.delivered_to: list[str] = []

    def started_parts(self) -> None:  # type: ignore[override]
        return None

    def delivered(self, session, recipient: str) -> None:  # type: ignore[no-untyped-def]
        self.delivered_to.append(recipient)
        super().delivered(session, recipient)


def test_a_success_with_a_gate_that_has_no_part_for_the_one_statement_is_recorded_in_a_transaction(sessions, settings):
    gate = OwnTransactionGate(settings)
    row = _pending_row(sessions, "me")
    command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template)
    with transaction(sessions) as session:
        attempt = Attempt(log_id=row.id, attempt=1, started_at=datetime.now(UTC))
        session.add(attempt)
        session.flush()
        attempt_id = attempt.id
    record = CallRecord(lambda session: attempt_id, "text", single=SingleCall(attempt_id, "default", time.monotonic()))
    trips = _recorded(sessions, settings, gate, command, row.recipient, record, "wamid.own")
    assert gate.delivered_to == [row.recipient] and trips.total > 1  # BEGIN … COMMIT, not the one statement
    with sessions() as session:
        logged = session.get(MessageLog, row.id)
    assert logged is not None and logged.status == Status.SENT and logged.provider_message_id == "wamid.own"


def test_a_claim_that_goes_is_two_round_trips_its_read_with_begin_and_its_write_with_commit(sessions, settings):
    # Given a number whose lease this process holds, and a message to a recipient never seen before
    gate, config = BudgetGate(settings), environment_sender(settings)
    PgLeaseStore(sessions, settings.namespace).renew([config.name], "me")
    with sessions() as session:
        runtime = load(session, settings)  # the sender keeps it in memory, refreshed by its heartbeat
    claims = PgClaimStore(settings, sessions, "me", gate, lambda: runtime)
    phone = f"+62811{uuid.uuid4().int % 10**7:07d}"

    def claimed() -> tuple[store.Claim, list[str], RoundTrips, MessageLog]:
        row = _pending_row(sessions, "nobody")
        with transaction(sessions) as session:
            session.execute(update(MessageLog).where(MessageLog.id == row.id).values(
                status=Status.QUEUED, attempts=0, recipient=phone))
        command = SendCommand(row.id, 1, Priority.NORMAL, str(row.event_id), row.template)
        statements: list[str] = []

        def seen(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
            statements.append(" ".join(statement.split()))

        trips, engine = RoundTrips(), claims.autocommit
        trips.install()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            claim = claims.claim(command, config, 0.0, lambda gap: 0.0, lambda log_id: False,
                                 Rules(False, False, settings.customer_window_seconds, settings.opt_out_scope))
        finally:
            event.remove(engine, "before_cursor_execute", seen)
            trips.uninstall()
        return claim, statements, trips, row

    # When it is claimed, and then another message to the same recipient
    for first_contact in (True, False):
        claim, (read, write), trips, row = claimed()
        # Then each claim is one read (which makes the recipient's row if missing, then locks the
        # number's, the message's and the recipient's rows) and one write, each one round trip
        assert isinstance(claim, store.Go), claim
        assert trips.total == 2, trips.snapshot()
        assert read.startswith("BEGIN; INSERT INTO recipients") and "; SELECT" in read, read
        assert read.endswith("FOR UPDATE OF sender_state, whatsapp_logs, recipients"), read
        assert write.startswith("WITH") and "INSERT INTO whatsapp_attempts" in write and write.endswith("; COMMIT")
        # and what it wrote is committed before the call: another connection sees it
        with sessions() as session:
            assert session.get(MessageLog, row.id).status == Status.PENDING  # type: ignore[union-attr]
            attempt = session.get(Attempt, claim.attempt_id)
            assert attempt is not None and attempt.log_id == row.id, first_contact
            assert session.get(Recipient, phone) is not None


def _plan(sessions, sql: str, params: dict) -> str:  # type: ignore[no-untyped-def,type-arg]
    """PostgreSQL's plan for ``sql`` as if its tables were big (sequential scans priced out)."""
    with transaction(sessions) as session:
        cursor = session.connection().connection.cursor()
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(line for (line,) in cursor.fetchall())


def test_recording_a_success_finds_the_call_s_contact_by_the_table_s_key(sessions):
    # The daily limit's contacts are keyed by (sender, recipient): by the recipient alone the
    # success of every call would scan the contacts of every sender.
    from sqlalchemy.dialects import postgresql

    compiled = store._plain_send(budget.started_parts).compile(dialect=postgresql.dialect())
    params = {"sent_started_ago": timedelta(seconds=0.01), "sent_namespace": "n", "sent_sender": "s",
              "sent_sender_id": "me", "sent_recipient": "+628114040707", "sent_attempt_id": 1, "sent_log_id": 1,
              "sent_provider_message_id": None, "sent_form": "text"}
    plan = _plan(sessions, str(compiled), compiled.construct_params(params))
    contact = plan[plan.index("CTE gate_0"):plan.index("CTE gate_1")]  # the budget's contact update
    assert any("Index Cond" in line and "(sender)::text =" in line for line in contact.splitlines()), contact


def test_a_claim_locks_the_number_before_the_message(sessions, settings):
    # Every claim takes the number's row first, so two claims never hold each other's next row.
    row = _pending_row(sessions, "nobody")
    with transaction(sessions) as session:  # the number's row and the recipient's exist
        lease.ensure_rows(session, settings.namespace, ["default"])
        budget.lock_recipient(session, row.recipient)
    holder = sessions()
    holder.execute(select(MessageLog).where(MessageLog.id == row.id).with_for_update())  # the message is busy
    claiming = threading.Thread(target=_claim_copy, args=(sessions, settings, row), daemon=True)
    try:
        claiming.start()
        deadline = time.monotonic() + 10
        state_locked = False
        while not state_locked and time.monotonic() < deadline and claiming.is_alive():
            time.sleep(0.05)
            with transaction(sessions) as probe:  # the claim, waiting for the message, holds the number
                state_locked = probe.execute(
                    select(SenderState.sender).where(SenderState.namespace == settings.namespace)
                    .with_for_update(skip_locked=True)).first() is None
        assert state_locked
    finally:
        holder.rollback()
        holder.close()
        claiming.join(10)
    assert not claiming.is_alive()
