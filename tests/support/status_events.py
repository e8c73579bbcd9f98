"""Listening to ``{ns}.status`` in tests, as an upstream app would, and writing status changes."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pika
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.db.engine import transaction
from wanotify.shared.topology import Topology


@dataclass(frozen=True)
class StatusEvent:
    routing_key: str
    amqp_message_id: str
    content_type: str | None
    persistent: bool
    body: dict[str, Any]


class StatusListener:
    """A queue of the test's own, bound to every status event of the namespace."""

    def __init__(self, amqp_url: str, namespace: str, binding: str = "message.#") -> None:
        self.queue = f"{namespace}.test-status-{uuid.uuid4().hex[:6]}"
        self._connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self._channel = self._connection.channel()
        exchange = Topology(namespace).status_exchange
        self._channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self._channel.queue_declare(self.queue, durable=True)
        self._channel.queue_bind(self.queue, exchange, routing_key=binding)
        self.received: list[StatusEvent] = []

    def wait_for(self, predicate: Any, timeout: float, what: str) -> list[StatusEvent]:
        """Read events until ``predicate(received)`` holds; everything received so far."""
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {len(self.received)} events")
            self._read_some()
        return self.received

    def _read_some(self) -> None:
        method, properties, body = self._channel.basic_get(self.queue, auto_ack=True)
        if method is None:
            self._connection.sleep(0.05)
            return
        self.received.append(StatusEvent(method.routing_key, properties.message_id, properties.content_type,
                                         properties.delivery_mode == 2, json.loads(body)))

    def close(self) -> None:
        if self._connection.is_open:
            self._channel.queue_delete(self.queue)
            self._connection.close()


def first_of_each(events: list[StatusEvent]) -> list[StatusEvent]:
    """The events as a consumer that dedupes on the AMQP message_id sees them."""
    seen: set[str] = set()
    kept = []
    for event in events:
        if event.amqp_message_id not in seen:
            seen.add(event.amqp_message_id)
            kept.append(event)
    return kept


def statuses_by_message(events: list[StatusEvent]) -> dict[int, list[str]]:
    by_message: dict[int, list[str]] = {}
    for event in first_of_each(events):
        by_message.setdefault(event.body["message_id"], []).append(event.body["status"])
    return by_message


def log_message(sessions: sessionmaker[Session], statuses: list[str], phone: str = "+628114040707",
                error: str | None = None) -> int:
    """A message that goes through ``statuses``, each change committed on its own; its log id."""
    with transaction(sessions) as session:
        log_id = int(session.execute(text(
            "INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status) "
            "VALUES (:event_id, 'member.registered', 'welcome', :phone, 'hi', 'normal', :status) RETURNING id"),
            {"event_id": uuid.uuid4(), "phone": phone, "status": statuses[0]}).scalar_one())
    for status in statuses[1:]:
        with transaction(sessions) as session:
            session.execute(text("UPDATE whatsapp_logs SET status = :status, last_error = :error WHERE id = :id"),
                            {"status": status, "error": error, "id": log_id})
    return log_id


def outbox_rows(sessions: sessionmaker[Session], unpublished_only: bool = False) -> int:
    where = " WHERE published_at IS NULL" if unpublished_only else ""
    with sessions() as session:
        return int(session.execute(text(f"SELECT count(*) FROM status_outbox{where}")).scalar_one())
