"""Queue health and backlog, read the same way by ``wanotify status`` and by each process's
metrics: passive queue declarations on the broker, counts in the message log."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
from pika.exceptions import ChannelClosedByBroker
from sqlalchemy import Select, String, func, null, select, union_all
from sqlalchemy.orm import Session

from wanotify.shared.db.models import WAITING_STATUSES, MessageLog, Status
from wanotify.shared.priority import Priority
from wanotify.shared.topology import DEFAULT_SENDER, Topology
from wanotify.shared.urls import amqp_urls


@dataclass(frozen=True)
class QueueStats:
    name: str
    ready: int | None  # None: the queue does not exist (yet)
    consumers: int | None


class QueueProbe:
    """Passive declarations on one reused connection (reopened if it breaks)."""

    def __init__(self, amqp_url: str) -> None:
        # Every node AMQP_URL lists: pika tries them in turn.
        self._params = [pika.URLParameters(url) for url in amqp_urls(amqp_url)]
        for params in self._params:
            params.client_properties = {"connection_name": "wanotify-monitor"}
        self._connection: pika.BlockingConnection | None = None

    def stats(self, names: list[str]) -> list[QueueStats]:
        # One channel serves every declaration until a 404 closes it: a round trip per queue, so
        # the 150 send queues of 50 senders cost tens of milliseconds, not a channel each.
        channel: Any = None
        try:
            found = []
            for name in names:
                if channel is None or not channel.is_open:
                    channel = self._channel()
                found.append(self._one(channel, name))
            return found
        except Exception:
            self.close()
            raise
        finally:
            if channel is not None and channel.is_open:
                with contextlib.suppress(Exception):
                    channel.close()

    def _channel(self) -> Any:
        if self._connection is None or self._connection.is_closed:
            self._connection = pika.BlockingConnection(self._params)
        return self._connection.channel()

    @staticmethod
    def _one(channel: Any, name: str) -> QueueStats:
        try:
            ok = channel.queue_declare(name, passive=True).method
        except ChannelClosedByBroker:  # 404: not declared yet (and the channel is closed)
            return QueueStats(name, None, None)
        return QueueStats(name, ok.message_count, ok.consumer_count)

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(Exception):
                self._connection.close()
        self._connection = None


def monitored_queues(topology: Topology) -> list[str]:
    return [spec.name for spec in topology.queues()]


PRIORITIES = ("high", "normal", "low")

# The statuses of messages no longer waiting: a message in one of them is counted in a pass of
# its own, so the waiting, however many, are read once.
SETTLED_STATUSES = tuple(s for s in Status if s not in WAITING_STATUSES)


@dataclass(frozen=True)
class Waiting:
    """The messages waiting for a call (queued, or failed with a retry to come), counted by
    status, priority and sender (``default`` for a message logged before senders existed)."""

    counts: dict[tuple[str, str, str], int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def by_priority(self) -> dict[str, int]:
        """Every priority, those none waits in at zero."""
        return self._by(1, dict.fromkeys(PRIORITIES, 0))

    @property
    def by_sender(self) -> dict[str, int]:
        return self._by(2, {})

    @property
    def by_status(self) -> dict[str, int]:
        return self._by(0, {})

    def _by(self, part: int, start: dict[str, int]) -> dict[str, int]:
        for key, count in self.counts.items():
            start[key[part]] = start.get(key[part], 0) + count
        return start


def tally_waiting(session: Session) -> Waiting:
    """One index-only pass over the waiting messages alone (``ix_whatsapp_logs_waiting`` holds
    their status, priority and sender): with a million waiting it took 0.11-0.14 s, where counting them
    by priority and then by sender took 0.30."""
    return _waiting_of(session.execute(_waiting_counts()).all())


def _waiting_counts() -> Select[str, str, str | None, int]:
    return (select(MessageLog.status, MessageLog.priority, MessageLog.sender, func.count())
            .where(MessageLog.status.in_(WAITING_STATUSES))
            .group_by(MessageLog.status, MessageLog.priority, MessageLog.sender))


def _waiting_of(rows: Iterable[Sequence[Any]]) -> Waiting:
    counts: dict[tuple[str, str, str], int] = {}
    for status, priority, sender, count in rows:
        key = (status, priority, sender or DEFAULT_SENDER)
        counts[key] = counts.get(key, 0) + count
    return Waiting(counts)


@dataclass(frozen=True)
class Census:
    """Every message in the log, counted by status, and the waiting ones as ``tally_waiting`` has them."""

    statuses: dict[str, int]
    waiting: Waiting


def census(session: Session) -> Census:
    """The waiting messages in their pass, the settled ones in another (an index range per
    status), so neither reads the other's rows; both in one statement, whose one snapshot counts
    a message that moves on meanwhile (queued to pending, dead to queued) once."""
    none = null().cast(String)
    settled = (select(MessageLog.status, none, none, func.count())
               .where(MessageLog.status.in_(SETTLED_STATUSES)).group_by(MessageLog.status))
    rows: Sequence[Sequence[Any]] = session.execute(union_all(_waiting_counts(), settled)).all()
    waiting = _waiting_of(row for row in rows if row[0] in WAITING_STATUSES)
    statuses = {status.value: 0 for status in Status} | waiting.by_status
    for status, _priority, _sender, count in rows:
        if status not in WAITING_STATUSES:
            statuses[status] = count
    return Census(statuses, waiting)


def next_queued(session: Session, limit: int) -> list[MessageLog]:
    """The queued messages that go next: by priority, then first in first out.

    The first rows of one index range per priority (``ix_whatsapp_logs_status_priority``, whose
    order is this one), not one sort of every queued message: with a million waiting, that sort
    took a quarter of a second."""
    rows: list[MessageLog] = []
    for priority in Priority:
        if len(rows) < limit:
            rows += session.scalars(select(MessageLog).where(MessageLog.status == Status.QUEUED,
                                                             MessageLog.priority == priority)
                                    .order_by(MessageLog.queued_at, MessageLog.id).limit(limit - len(rows)))
    return rows


def next_messages(session: Session, limit: int = 5) -> list[dict[str, Any]]:
    """The messages the sender takes next, as ``status`` lists them."""
    return [{"id": m.id, "priority": m.priority, "template": m.template, "queued_at": m.queued_at}
            for m in next_queued(session, limit)]
