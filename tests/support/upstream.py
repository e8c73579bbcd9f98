"""An upstream app's own database for the outbox tests: its business table and the outbox."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from wanotify.producers import outbox
from wanotify.shared.db.engine import create_database_if_missing, drop_database
from wanotify.shared.topology import Topology, declare_topology

metadata = MetaData()
orders = Table("orders", metadata, Column("id", BigInteger, primary_key=True, autoincrement=True),
               Column("member", String(20), nullable=False), Column("amount", Integer, nullable=False))
outbox.include_in(metadata)


@contextmanager
def upstream_database(server_url: str) -> Iterator[str]:
    """A new database named after the test session, with the app's tables; dropped afterwards."""
    url = make_url(server_url).set(database=f"wanotify_upstream_{uuid.uuid4().hex[:8]}")
    rendered = url.render_as_string(hide_password=False)
    create_database_if_missing(rendered)
    try:
        engine = create_engine(rendered)
        metadata.create_all(engine)
        engine.dispose()
        yield rendered
    finally:
        drop_database(rendered)


def with_application_name(database_url: str, name: str) -> str:
    """The URL with an application_name, so a test can find (and cut) those connections."""
    return make_url(database_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def place_order(engine: Engine, member: str, amount: int) -> str:
    """The app's business transaction: an order and its event, committed together; the event_id."""
    [event_id] = place_orders(engine, [(member, amount)])
    return event_id


def place_orders(engine: Engine, placed: list[tuple[str, int]]) -> list[str]:
    """Several (member, amount) orders and their events in one transaction; their event_ids."""
    with Session(engine) as session, session.begin():
        return [_order(session, member, amount) for member, amount in placed]


def _order(session: Session, member: str, amount: int) -> str:
    order_id = session.execute(orders.insert().values(member=member, amount=amount).returning(orders.c.id)).scalar_one()
    return outbox.add(session, "payment.link_created", {"member_id": member, "order_id": order_id, "amount": amount},
                      aggregate_id=member, source="shop")


def unsent(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox.outbox)
                                      .where(outbox.outbox.c.sent_at.is_(None))).scalar_one())


def terminate(engine: Engine, application_name: str) -> int:
    """Cut every connection of that name, as a database restart would; how many there were."""
    with engine.connect() as connection:
        cut = connection.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE application_name = :name"), {"name": application_name}).scalar_one()
        connection.commit()
        return int(cut)


@dataclass
class EventTap:
    """A queue of the test's own on ``{ns}.events``: everything published there, in order."""

    amqp_url: str
    namespace: str
    queue: str = field(default_factory=lambda: f"tap-{uuid.uuid4().hex[:6]}")
    received: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue = f"{self.namespace}.{self.queue}"
        self._connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        self._channel = self._connection.channel()
        topology = Topology(self.namespace)
        declare_topology(self._channel, topology)
        self._channel.queue_declare(self.queue, durable=True)
        self._channel.queue_bind(self.queue, topology.events_exchange, routing_key="#")

    def wait_for(self, predicate: Any, timeout: float, what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {len(self.received)} events")
            method, properties, body = self._channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                self._connection.sleep(0.05)
                continue
            self.received.append({"message_id": properties.message_id, "routing_key": method.routing_key,
                                  "persistent": properties.delivery_mode == 2, "envelope": json.loads(body)})
        return self.received

    def close(self) -> None:
        if self._connection.is_open:
            self._channel.queue_delete(self.queue)
            self._connection.close()
