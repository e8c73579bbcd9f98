"""The outbox's rows as the relay sees them: read and marked on one dedicated connection,
which on PostgreSQL also holds the advisory lock that makes this relay the only active one."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, select, text, update

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    event_type: str
    body: str


class OutboxRows:
    """The outbox's rows, read and marked on one dedicated connection (which holds the lock)."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine = engine
        self._table = table
        self._connection: Connection | None = None
        self._locking = engine.dialect.name == "postgresql"

    def try_lock(self) -> bool:
        if self._connection is not None:
            return True
        connection = self._engine.connect()
        try:
            got = not self._locking or bool(connection.execute(
                text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": f"wanotify-relay:{self._table.name}"}
            ).scalar())
            connection.commit()
        except Exception:
            self._discard(connection)
            raise
        if got:
            self._connection = connection
            log.info("outbox relay: active on table %s", self._table.name)
        else:
            connection.close()
        return got

    def unsent(self, limit: int) -> list[OutboxRow]:
        t = self._table
        rows = self._held().execute(select(t.c.id, t.c.event_id, t.c.event_type, t.c.body)
                                    .where(t.c.sent_at.is_(None)).order_by(t.c.id).limit(limit)).all()
        self._held().commit()
        return [OutboxRow(row.id, str(row.event_id), row.event_type, row.body) for row in rows]

    def mark_sent(self, ids: list[int]) -> None:
        t = self._table
        self._held().execute(update(t).where(t.c.id.in_(ids)).values(sent_at=func.now()))
        self._held().commit()

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self._locking:
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
                connection.commit()
            connection.close()
        except Exception:  # noqa: BLE001 - a broken connection holds no lock any more
            self._discard(connection)

    def drop(self) -> None:
        """After a database error: never pool this connection again (it might still hold the lock)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._discard(connection)

    def _held(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the outbox relay has not taken its lock")
        return self._connection

    @staticmethod
    def _discard(connection: Connection) -> None:
        with contextlib.suppress(Exception):  # already broken
            connection.invalidate()
        with contextlib.suppress(Exception):
            connection.close()
