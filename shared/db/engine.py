"""Engines and sessions, built from the settings at the entry point."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.db.folded import allow_folding

# A process runs its blocking database work in its event loop's default executor
# (``asyncio.to_thread``), which has this many threads; so an engine has at most that many
# connections in use at once. A pool smaller than that opens an overflow connection for each
# extra thread and closes it as soon as it is handed back: PostgreSQL starts a backend for every
# such use (a sender with 50 numbers at 0.2 s made it start five a second).
DATABASE_THREADS = min(32, (os.cpu_count() or 1) + 4)  # the size Python gives a default executor


def make_engine(database_url: str, *, pool_size: int = DATABASE_THREADS, pre_ping: bool = True) -> Engine:
    """An engine for ``database_url``, keeping up to ``pool_size`` connections open (by default
    one per database thread; a command that runs one statement at a time passes 1).

    ``pre_ping`` checks each pooled connection before use, so a caller without its own retry
    never sees a connection PostgreSQL closed when it restarted. The consumers turn it off:
    it costs a round trip per transaction, and their ``run_db`` retries after a disconnect
    anyway (SQLAlchemy then drops every pooled connection older than the failure).

    ``hide_parameters``: the parameters of a failed statement (phone numbers, message texts)
    stay out of exception texts and logs; the statement itself is still shown.
    """
    return create_engine(database_url, pool_size=pool_size, pool_pre_ping=pre_ping, future=True,
                         hide_parameters=True)


def autocommit_twin(engine: Engine) -> Engine:
    """An engine to ``engine``'s database whose connections stay in autocommit mode, where one
    statement is one transaction: no BEGIN or COMMIT round trips around it. Made once per
    engine and disposed with it. (``execution_options(isolation_level="AUTOCOMMIT")`` on the
    engine itself would share its pool, and every connection handed back would cost a round
    trip to set its isolation level back.)"""
    twin = _TWINS.get(engine)
    if twin is None:
        twin = create_engine(engine.url, pool_size=engine.pool.size(),  # type: ignore[attr-defined]
                             isolation_level="AUTOCOMMIT", future=True, hide_parameters=True)
        allow_folding(twin)
        _TWINS[engine] = twin
        event.listen(engine, "engine_disposed", lambda _engine: twin.dispose())
    return twin


_TWINS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back on error."""
    with factory() as session, session.begin():
        yield session


def create_database_if_missing(database_url: str) -> bool:
    """Create the database named in the URL (connecting to ``postgres``); True if created."""
    url = make_url(database_url)
    name = url.database
    if not name:
        raise ValueError("DATABASE_URL names no database")
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        admin.dispose()


def drop_database(database_url: str) -> None:
    """Drop the database named in the URL, closing other connections to it first."""
    url = make_url(database_url)
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _admin_engine(url: URL) -> Engine:
    """An engine on the server's ``postgres`` database, for creating and dropping databases."""
    return create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", hide_parameters=True)
