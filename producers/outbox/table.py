"""The outbox table an upstream app keeps in its own database, and ``add`` to write to it.

The app writes an event in the same transaction as its business data, so both are committed or
neither is: the dual write of "commit, then publish" (a crash in between loses the event; a
publish before a rollback announces what never happened) cannot occur. ``OutboxRelay`` then
publishes committed rows to wanotify.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, func, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from wanotify.producers.envelope import prepare

TABLE_NAME = "wanotify_outbox"

_metadata = MetaData()

outbox = Table(
    TABLE_NAME, _metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    # Events of one aggregate (an order, a member) are published in the order they were written.
    Column("aggregate_id", String(200), nullable=False),
    # The envelope exactly as it will be published (contract section 1), built and checked at write time.
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Index(f"ix_{TABLE_NAME}_unsent", "id", postgresql_where=text("sent_at IS NULL")),
)


def include_in(metadata: MetaData) -> Table:
    """The outbox table in the app's own metadata (for ``create_all`` or Alembic autogenerate)."""
    return outbox.to_metadata(metadata)


def add(session: Session | Connection, event_type: str, data: dict[str, Any], *, aggregate_id: str | int,
        event_id: str | uuid.UUID | None = None, source: str | None = None) -> str:
    """Write one event into the outbox, inside the caller's transaction; returns its event_id.

    The envelope is validated now, so a bad event fails the app's own transaction instead of
    reaching the relay. Commit (or roll back) as usual: the event goes with the business data.
    ``event_id`` (a new UUID if not given) is the idempotency key downstream: wanotify makes one
    message of an event however often the relay publishes it.
    """
    event = prepare(event_type, data, source=source, event_id=str(event_id) if event_id else None)
    session.execute(insert(outbox).values(
        event_id=uuid.UUID(event.event_id), event_type=event.event_type, aggregate_id=str(aggregate_id),
        body=event.body.decode()))
    return event.event_id
