"""A big send backlog made directly: log rows from one ``INSERT … SELECT generate_series`` and their
send commands published straight to the send queues, without the notifier.

Going through the notifier makes a realistic backlog (``load.py``) but a million events would
take minutes of its time; this makes the same rows and commands (status ``queued``, attempt 1)
in a fraction of it. The commands are persistent messages with the body ``SendCommand.encode``
gives, published without confirms; the queues' depth confirms they are all in.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pika
from sqlalchemy import text

from bench.config import AMQP_URL, DATABASE_URL
from wanotify.shared.db.engine import make_engine
from wanotify.shared.messages import SendCommand
from wanotify.shared.monitoring import QueueProbe
from wanotify.shared.priority import Priority
from wanotify.shared.topology import DEFAULT_SENDER, Topology


@dataclass(frozen=True)
class Backlog:
    """Rows ``first_id .. first_id + count - 1``; row ``i`` (0-based) has ``priority_of(i)`` and ``sender_of(i)``."""

    first_id: int
    count: int
    priority_of: Callable[[int], Priority]
    sender_of: Callable[[int], str]


def split(shares: Sequence[tuple[Priority, int]]) -> Callable[[int], Priority]:
    """Priorities by row number: the first ``n`` rows of each share in order (the backlog's high ones first)."""
    bounds, total = [], 0
    for priority, n in shares:
        total += n
        bounds.append((total, priority))

    def priority_of(i: int) -> Priority:
        return next(p for bound, p in bounds if i < bound)
    return priority_of


def insert_rows(count: int, priority_of: Callable[[int], Priority], sender_of: Callable[[int], str],
                priority_sql: str, sender_sql: str, *, vacuum: bool = False) -> Backlog:
    """``count`` queued rows in one statement; ``*_sql`` compute in SQL (over ``i``, 0-based) what
    ``priority_of`` / ``sender_of`` compute in Python, so commands can be made without reading rows back."""
    engine = make_engine(DATABASE_URL, pool_size=1)
    try:
        with engine.begin() as conn:
            template = conn.execute(text("SELECT key FROM templates ORDER BY key LIMIT 1")).scalar_one()
            first = conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM whatsapp_logs")).scalar_one()
            # A waiting backlog's "queued" status events went out when it was queued, long ago: no
            # outbox rows for them (else the status relay would spend the scenario publishing them).
            conn.execute(text("ALTER TABLE whatsapp_logs DISABLE TRIGGER whatsapp_logs_status_events"))
            conn.execute(text(f"""
                INSERT INTO whatsapp_logs (id, event_id, event_type, template, recipient, body, priority, sender,
                                           status, attempts)
                SELECT :first + i, gen_random_uuid(), 'member.registered', :template,
                       '62812' || lpad(i::text, 8, '0'), 'Halo Bench ' || i, {priority_sql}, {sender_sql}, 'queued', 0
                FROM generate_series(0, :count - 1) AS i"""), {"first": first, "template": template, "count": count})
            conn.execute(text("ALTER TABLE whatsapp_logs ENABLE TRIGGER whatsapp_logs_status_events"))
            conn.execute(text("SELECT setval(pg_get_serial_sequence('whatsapp_logs', 'id'), :last)"),
                         {"last": first + count - 1})
        if vacuum:  # as autovacuum would have left a backlog that has been waiting a while
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE whatsapp_logs"))
    finally:
        engine.dispose()
    return Backlog(first, count, priority_of, sender_of)


def publish_commands(ns: str, backlog: Backlog, progress: Callable[[int], None] | None = None,
                     timeout: float = 300.0) -> float:
    """Every row's send command on its sender's queue of its priority; returns seconds.

    Without publisher confirms (pika writes each frame straight to the socket, ~4x aiormq's rate
    with confirms here): TCP backpressure paces it, and the queues' depth says when all are in."""
    topology = Topology(ns)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    event_id = str(uuid.uuid4())
    targets: set[str] = set()
    began = time.monotonic()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        for i in range(backlog.count):
            priority, sender = backlog.priority_of(i), backlog.sender_of(i)
            queue = topology.send_queue_for(sender, priority)
            targets.add(queue)
            channel.basic_publish("", queue, SendCommand(backlog.first_id + i, 1, priority, event_id, "bench",
                                                         sender=sender).encode(), props)
            if progress and i and i % 100_000 == 0:
                progress(i)
    finally:
        connection.close()
    _wait_until_queued(sorted(targets), backlog.count, began + timeout)
    return time.monotonic() - began


def _wait_until_queued(queues: list[str], count: int, deadline: float) -> None:
    probe = QueueProbe(AMQP_URL)
    try:
        while (ready := sum(q.ready or 0 for q in probe.stats(queues))) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ready} of {count} send commands reached their queues")
            time.sleep(0.2)
    finally:
        probe.close()


def one_sender(_i: int) -> str:
    return DEFAULT_SENDER
