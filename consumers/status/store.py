"""The relay's side of ``status_outbox``: one lock holder per database, rows in id order.

Why id order is enough for "in order per message": two status changes of one message are
serialized by the row lock on ``whatsapp_logs``, so the later change takes its outbox id
(and commits) only after the earlier one committed. Any snapshot that sees the later row sees
the earlier one too, unless it was already published. Reading ``published_at IS NULL`` (never
"ids above the last one") means a row whose transaction committed late is not skipped.

Only the holder of a session-level advisory lock publishes. The lock lives on one dedicated
connection: if PostgreSQL restarts or cuts that connection, the lock is gone with it and a
standby (or this relay, once reconnected) takes over from the oldest unpublished row. Rows the
old holder published but had not marked are published again (at least once; consumers dedupe
on the AMQP message_id, one per outbox row).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from wanotify.shared.db.engine import autocommit_twin

# pg_advisory_lock key of the status relay ("WASTAT"): advisory locks are per database, so
# this means one active relay per wanotify database.
RELAY_LOCK_KEY = 0x57_41_53_54_41_54


@dataclass(frozen=True)
class OutboxRow:
    id: int
    log_id: int
    event_id: str
    template: str
    sender: str | None
    status: str
    error: str | None
    at: datetime


@dataclass(frozen=True)
class Backlog:
    rows: int
    oldest_age_seconds: float


class StatusOutboxStore:
    """Blocking database calls of the relay; made from worker threads, one at a time."""

    def __init__(self, engine: Engine) -> None:
        # Every call is one statement: on an autocommit connection it is its own transaction,
        # with no BEGIN and COMMIT round trips around it (the commits below then send nothing).
        self._engine = autocommit_twin(engine)
        self._holder: Connection | None = None

    @property
    def holding(self) -> bool:
        return self._holder is not None

    def try_acquire(self) -> bool:
        """Take the relay lock if nobody holds it; True while we hold it."""
        if self._holder is not None:
            return True
        connection = self._engine.connect()
        try:
            got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY}).scalar())
            connection.commit()
        except Exception:
            connection.invalidate()
            connection.close()
            raise
        if got:
            self._holder = connection
        else:
            connection.close()  # no lock taken: the connection may go back to the pool
        return got

    def pending(self, limit: int) -> list[OutboxRow]:
        rows = self._connection().execute(text(
            "SELECT id, log_id, event_id::text, template, sender, status, error, at FROM status_outbox "
            "WHERE published_at IS NULL ORDER BY id LIMIT :limit"), {"limit": limit}).all()
        self._connection().commit()
        return [OutboxRow(*row) for row in rows]

    def mark_published(self, ids: list[int]) -> None:
        self._connection().execute(text("UPDATE status_outbox SET published_at = clock_timestamp() WHERE id = ANY(:ids)"),
                                   {"ids": ids})
        self._connection().commit()

    def prune(self, retention_seconds: float) -> int:
        """Delete rows published longer ago than the retention; returns how many."""
        result = self._connection().execute(text(
            "DELETE FROM status_outbox WHERE published_at < clock_timestamp() - make_interval(secs => :secs)"),
            {"secs": retention_seconds})
        self._connection().commit()
        return int(result.rowcount or 0)

    def backlog(self) -> Backlog:
        count, age = self._connection().execute(text(
            "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(at)), 0) FROM status_outbox "
            "WHERE published_at IS NULL")).one()
        self._connection().commit()
        return Backlog(int(count), float(age))

    def release(self) -> None:
        """Give the lock back (a clean stop): a standby takes over at once."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        try:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK_KEY})
            holder.commit()
            holder.close()
        except Exception:  # noqa: BLE001 - a broken connection has released the lock already
            self._discard(holder)

    def drop(self) -> None:
        """Forget the lock after a database error: its connection is closed, never pooled
        again (a pooled connection would keep holding a session lock)."""
        holder, self._holder = self._holder, None
        if holder is not None:
            self._discard(holder)

    def _connection(self) -> Connection:
        if self._holder is None:
            raise RuntimeError("the status relay lock is not held")
        return self._holder

    @staticmethod
    def _discard(connection: Connection) -> None:
        with contextlib.suppress(Exception):
            connection.invalidate()
        with contextlib.suppress(Exception):
            connection.close()
