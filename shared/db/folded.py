"""Transactions whose ``BEGIN`` and ``COMMIT`` cost no round trips of their own.

psycopg2 sends ``BEGIN`` before a transaction's first statement and ``COMMIT`` at its end, each
a round trip. On a connection in autocommit mode, ``folded`` sends them in the same round trip
as the transaction's first and last statements instead, as one multi-statement query
(``BEGIN; SELECT …`` and ``UPDATE …; COMMIT``). ``run_with_next`` puts another statement in
front of the next one the same way. PostgreSQL runs such a query's statements in order and
stops at the first error, which leaves the transaction open and failed: the block rolls it
back. psycopg2 returns only the last statement's rows, so a statement that commits returns none.

psycopg2 never commits or rolls back a transaction it did not begin itself, and on an
autocommit connection it begins none. So the block checks the connection's own transaction
status (libpq's, known without asking the server) before handing it back: nothing leaves it
with a transaction open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import Connection, Dialect, Engine, Executable, event
from sqlalchemy.engine import Compiled
from sqlalchemy.orm import Session

# Connection.info keys (the DBAPI connection's dictionary, kept across pool checkouts: the
# block always clears them).
_BEFORE = "wanotify.folded.before"  # SQL to send in front of the next statement
_AFTER = "wanotify.folded.after"  # SQL to send after it
_FOLDED = "wanotify.folded.active"  # the connection is in a ``folded`` block


def allow_folding(engine: Engine) -> None:
    """Let statements on ``engine`` carry others in their round trip (idempotent)."""
    if not event.contains(engine, "before_cursor_execute", _fold):
        event.listen(engine, "before_cursor_execute", _fold, retval=True)


def _fold(conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any,
          executemany: bool) -> tuple[str, Any]:
    before, after = conn.info.pop(_BEFORE, ""), conn.info.pop(_AFTER, "")
    if (before or after) and executemany:  # it would be repeated for every row
        raise RuntimeError("a statement run for many rows cannot carry another")
    return before + statement + after, parameters


@contextmanager
def folded(engine: Engine) -> Iterator[Session]:
    """A session on an autocommit ``engine`` (see ``autocommit_twin``) whose transaction begins
    with its first statement and commits with the statement after ``commit_with_next``, or at
    the end of the block (after a flush) if none did; on an error it is rolled back."""
    allow_folding(engine)
    with engine.connect() as connection:
        if not getattr(connection.connection.dbapi_connection, "autocommit", False):
            raise ValueError("folded() needs an engine in autocommit mode (autocommit_twin): the driver "
                             "would send a BEGIN of its own")
        connection.info.update({_BEFORE: "BEGIN; ", _FOLDED: True})
        session = Session(bind=connection, expire_on_commit=False)
        try:
            yield session
            session.flush()
            if _in_transaction(connection):
                connection.exec_driver_sql("COMMIT")
        finally:
            session.close()
            # A connection lost on the way (PostgreSQL restarted, say) is invalidated: touching
            # it again would try to reconnect and replace the outage's error with another one
            # (so the caller would not know to wait and retry). The pool discards it.
            if not connection.invalidated:
                for key in (_BEFORE, _AFTER, _FOLDED):
                    connection.info.pop(key, None)
                _end_any_transaction(connection)


def commit_with_next(session: Session) -> None:
    """In a ``folded`` block, the session's next statement commits the transaction in its round
    trip (what the session holds unsaved is flushed first); elsewhere nothing: the transaction
    commits as it would."""
    connection = session.connection()
    if connection.info.get(_FOLDED):
        session.flush()
        connection.info[_AFTER] = "; COMMIT"


def run_with_next(session: Session, statement: Executable, params: dict[str, Any]) -> None:
    """Run ``statement`` in front of the session's next statement, in its round trip, inside a
    ``folded`` block; elsewhere now, on its own (text kept for a statement that never comes
    would otherwise ride on whatever the connection runs next). Its rows, if any, are not
    returned. Its values are written into the query's text (an error's message shows them): ids,
    not personal data, and nothing with a ``%``, which the driver would read again as a
    placeholder of the next statement's parameters."""
    connection = session.connection()
    if not connection.info.get(_FOLDED):
        connection.execute(statement, params)
        return
    compiled = _compiled(statement, connection.dialect)
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None  # the session's connection is checked out
    cursor = dbapi.cursor()  # psycopg2 quotes the values itself (client-side), as it would for the query
    try:
        sql = cursor.mogrify(compiled.string, compiled.construct_params(params)).decode()
    finally:
        cursor.close()
    if "%" in sql:
        raise ValueError("a statement run in front of another cannot contain '%' (in its text or its values)")
    connection.info[_BEFORE] = connection.info.get(_BEFORE, "") + sql + "; "


@cache
def _compiled(statement: Executable, dialect: Dialect) -> Compiled:
    return statement.compile(dialect=dialect)  # type: ignore[attr-defined, no-any-return]


def _in_transaction(connection: Connection) -> bool:
    dbapi = connection.connection.dbapi_connection
    return dbapi is not None and not dbapi.closed and dbapi.info.transaction_status != TRANSACTION_STATUS_IDLE


def _end_any_transaction(connection: Connection) -> None:
    """Roll back what an error (or anything else) left open; a connection that cannot is dropped."""
    if not _in_transaction(connection):
        return
    try:
        connection.exec_driver_sql("ROLLBACK")
    except Exception:  # noqa: BLE001 - the connection is broken: never reuse it
        connection.invalidate()
