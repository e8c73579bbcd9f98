"""Transactions whose BEGIN and COMMIT ride on their first and last statements (``shared.db.folded``)."""

from __future__ import annotations

import uuid

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from bench.counted import RoundTrips
from wanotify.shared.db.engine import autocommit_twin
from wanotify.shared.db.folded import commit_with_next, folded, run_with_next
from wanotify.shared.db.models import Recipient
from wanotify.shared.db.retry import is_outage


def _phone() -> str:
    return f"+62812{uuid.uuid4().int % 10**7:07d}"


def _exists(sessions, phone: str) -> bool:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.get(Recipient, phone) is not None


def _idle(engine) -> bool:  # type: ignore[no-untyped-def]
    """The pooled connection the next block gets has no transaction open."""
    with engine.connect() as connection:
        dbapi = connection.connection.dbapi_connection
        return dbapi.info.transaction_status == TRANSACTION_STATUS_IDLE and connection.exec_driver_sql(
            "SELECT 1").scalar() == 1


@pytest.fixture
def twin(sessions):  # type: ignore[no-untyped-def]
    return autocommit_twin(sessions.kw["bind"])


def test_a_block_s_writes_commit_with_its_last_statement_in_the_round_trips_of_its_statements(sessions, twin):
    phone, trips = _phone(), RoundTrips()
    trips.install()
    try:
        with folded(twin) as session:
            session.execute(select(Recipient).where(Recipient.phone == phone).with_for_update()).all()
            commit_with_next(session)
            session.execute(insert(Recipient).values(phone=phone))
    finally:
        trips.uninstall()
    assert trips.total == 2 and _exists(sessions, phone) and _idle(twin)


def test_a_block_that_never_commits_by_statement_commits_its_flushed_work_at_its_end(sessions, twin):
    phone = _phone()
    with folded(twin) as session:
        session.add(Recipient(phone=phone))  # the ORM's unit of work, flushed at the end
    assert _exists(sessions, phone) and _idle(twin)


def test_an_error_in_a_block_rolls_back_what_it_wrote_and_hands_the_connection_back_idle(sessions, twin):
    phone = _phone()
    with pytest.raises(ProgrammingError), folded(twin) as session:
        session.execute(insert(Recipient).values(phone=phone))
        commit_with_next(session)
        session.execute(text("SELECT no_such_column FROM recipients"))
    assert not _exists(sessions, phone) and _idle(twin)


def test_a_python_error_after_the_first_statement_rolls_back_too(sessions, twin):
    phone = _phone()
    with pytest.raises(KeyError), folded(twin) as session:
        session.execute(insert(Recipient).values(phone=phone))
        raise KeyError("decided not to")
    assert not _exists(sessions, phone) and _idle(twin)


def test_a_statement_run_with_the_next_shares_its_round_trip_and_its_transaction(sessions, twin):
    phone, trips = _phone(), RoundTrips()
    trips.install()
    try:
        with folded(twin) as session:
            run_with_next(session, insert(Recipient).values(phone=phone), {})
            seen = session.execute(select(Recipient.phone).where(Recipient.phone == phone)).scalar()
    finally:
        trips.uninstall()
    assert seen == phone and trips.total == 2 and _exists(sessions, phone)  # the read and the COMMIT


def test_on_an_engine_that_does_not_fold_a_statement_for_the_next_one_runs_at_once(sessions):
    phone = _phone()
    plain = create_engine(sessions.kw["bind"].url, isolation_level="AUTOCOMMIT")
    try:
        with plain.connect() as connection, Session(bind=connection) as session:
            run_with_next(session, insert(Recipient).values(phone=phone), {})
            assert _exists(sessions, phone)
    finally:
        plain.dispose()


def test_a_statement_run_for_many_rows_cannot_carry_another(sessions, twin):
    phones = [_phone(), _phone()]
    with pytest.raises(RuntimeError, match="many rows"), folded(twin) as session:
        session.connection().execute(insert(Recipient), [{"phone": p} for p in phones])
    assert not any(_exists(sessions, p) for p in phones) and _idle(twin)


def test_a_connection_lost_in_a_block_comes_out_as_the_outage_it_is(sessions, twin):
    # Given a pooled connection whose backend has gone (as after a PostgreSQL restart), the
    # only one in the pool, so the block gets it
    twin.dispose()
    with twin.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with sessions() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # When a block's first statement runs on it
    with pytest.raises(Exception) as raised, folded(twin) as session:
        session.execute(select(Recipient).where(Recipient.phone == _phone()).with_for_update()).all()
    # Then the error says the database is unreachable, so the caller waits and retries
    assert is_outage(raised.value), repr(raised.value)
    assert _idle(twin)


def test_outside_a_block_a_statement_for_the_next_one_runs_at_once_even_where_the_engine_folds(sessions, twin):
    phone = _phone()
    with twin.connect() as connection, Session(bind=connection) as session:
        run_with_next(session, insert(Recipient).values(phone=phone), {})
        assert _exists(sessions, phone)


def test_a_statement_for_the_next_one_refuses_a_percent_sign_the_driver_would_read_as_a_placeholder(sessions, twin):
    phone = _phone() + "%(x)s"
    with pytest.raises(ValueError, match="'%'"), folded(twin) as session:
        run_with_next(session, insert(Recipient).values(phone=phone), {})
    assert not _exists(sessions, phone) and _idle(twin)


def test_a_block_refuses_an_engine_whose_driver_begins_transactions_itself(sessions):
    with pytest.raises(ValueError, match="autocommit"), folded(sessions.kw["bind"]):
        pass
