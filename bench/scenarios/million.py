"""million: a million messages waiting, and the system still answers at once.

1. A million queued rows (one ``INSERT … SELECT generate_series``) and their send commands on
   the default sender's three queues (``bench.direct``): a few high, most normal, the rest low.
2. A notifier process and a sender process (gap ``million_gap``) start; the sender first sends
   the waiting highs.
3. Then live high-priority events are published one by one (through the notifier): each one's
   call must come within one gap of its publish, ahead of the normal and low million.
4. ``wanotify status`` is asked what it sees (the same ``collect`` the CLI runs, on a fresh
   broker and database connection, 3 times; and the CLI itself as a process, whose time is
   mostly Python starting up).
5. Resident memory (RSS, psutil, with children) of both processes, peak over the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench import direct, events, procs
from bench.config import AMQP_URL, PROJECT_ROOT
from bench.env import declare_namespace, delete_namespace, fresh_database, namespace, process_env, settings
from bench.fake import FakeProvider
from bench.scenarios import Context, goal
from wanotify.producers import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.monitoring import QueueProbe, QueueStats
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

GOAL_RSS_MB = 150
GOAL_STATUS_S = 1.0
WAITING_HIGH = 10  # sent first, before the live highs are published
LIVE = 3_000_000  # index of the first live high event (names the waiting rows never have)


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    n, gap = ctx.sizes.million_messages, ctx.sizes.million_gap
    ns = namespace("million")
    fake = FakeProvider(ctx.log_dir, "million-fake")
    s = settings(ns, gap, fake.url)
    metrics: dict[str, Any] = {"messages": n, "gap_s": gap}
    try:
        declare_namespace(ns)
        metrics.update(_queue_million(ns, n))
        notifier = procs.wanotify("notifier", process_env(s), ctx.log_dir, name="million-notifier")
        try:
            sender = procs.wanotify("sender", process_env(s), ctx.log_dir, name="million-sender")
            try:
                metrics.update(_live_highs(s, fake, notifier, sender, ctx.sizes.million_live_high, gap))
                metrics.update(_status(s, ctx))
                notifier.rss(), sender.rss()
            finally:
                sender.stop()
        finally:
            notifier.stop()
    finally:
        fake.stop()
        delete_namespace(ns)
    metrics["notifier_peak_rss_mb"] = round(notifier.peak_rss / 2**20, 1)
    metrics["sender_peak_rss_mb"] = round(sender.peak_rss / 2**20, 1)
    k = ctx.sizes.million_live_high
    return {
        "metrics": metrics,
        "goals": [goal("messages waiting", metrics["queued"], ">=", n),
                  goal("live high: call within one gap (max s)", metrics["live_high_latency_max_s"], "<=", gap),
                  goal("live highs sent", metrics["live_high_sent"], "==", k),
                  goal("notifier RSS (MB)", metrics["notifier_peak_rss_mb"], "<", GOAL_RSS_MB),
                  goal("sender RSS (MB)", metrics["sender_peak_rss_mb"], "<", GOAL_RSS_MB),
                  goal("status answers (max s)", metrics["status_max_s"], "<", GOAL_STATUS_S)],
        "notes": f"{WAITING_HIGH} high, the rest normal (60 %) and low; status: collect() on fresh connections, as "
                 "the CLI runs it after start-up (the CLI process's wall time, start-up included, is a figure)",
    }


def _queue_million(ns: str, n: int) -> dict[str, Any]:
    normal = int(n * 0.6)
    shares = [(Priority.HIGH, WAITING_HIGH), (Priority.NORMAL, normal), (Priority.LOW, n - WAITING_HIGH - normal)]
    began = time.monotonic()
    backlog = direct.insert_rows(
        n, direct.split(shares), direct.one_sender,
        f"CASE WHEN i < {WAITING_HIGH} THEN 'high' WHEN i < {WAITING_HIGH + normal} THEN 'normal' ELSE 'low' END",
        "'default'", vacuum=True)
    inserted = time.monotonic() - began
    print(f"  million: {n} rows inserted (and vacuumed) in {inserted:.1f} s; publishing their commands …", flush=True)
    published = direct.publish_commands(ns, backlog, progress=lambda i: i and print(f"  million: {i} published", flush=True))
    probe = QueueProbe(AMQP_URL)
    try:
        queued = sum(q.ready or 0 for q in probe.stats(_send_queues(ns)))
    finally:
        probe.close()
    return {"queued": queued, "insert_seconds": round(inserted, 1), "publish_seconds": round(published, 1),
            "publish_msgs_per_s": round(n / published) if published else None}


def _send_queues(ns: str) -> list[str]:
    return Topology(ns).send_queues()


def _live_highs(s: Settings, fake: FakeProvider, notifier: procs.Proc, sender: procs.Proc, k: int,
                gap: float) -> dict[str, Any]:
    """Wait for the waiting highs to go, then publish ``k`` live highs, 1.5 gaps apart."""
    deadline = time.monotonic() + 60 + WAITING_HIGH * gap * 2
    while fake.count() < WAITING_HIGH and time.monotonic() < deadline:
        notifier.rss(), sender.rss()
        time.sleep(0.5)
    waiting_high_first = sum(1 for c in fake.calls()[:WAITING_HIGH] if _index(c) is not None and _index(c) < WAITING_HIGH)
    published: dict[str, float] = {}
    with EventPublisher(s.amqp_url, s.namespace, source="bench") as publisher:
        for j in range(k):
            time.sleep(gap * 1.5)
            notifier.rss(), sender.rss()
            event_type, data = events.payment_link(LIVE + j)
            published[data["name"]] = time.time()
            publisher.publish(event_type, data)
    time.sleep(gap * 2 + 1)
    calls = fake.calls()
    latencies, between, after_previous = [], [], []
    for name, t in published.items():
        arrival = next((c["t"] for c in calls if events.name_in(c["body"] or "") == name), None)
        if arrival is not None:
            latencies.append(arrival - t)
            # A call whose slot began before the high reached the sender goes first; the high
            # then waits one gap from it: over a gap in all when the event came just before.
            between.append(sum(1 for c in calls if t <= c["t"] < arrival))
            after_previous.append(arrival - max((c["t"] for c in calls if c["t"] < arrival), default=t))
    return {"waiting_high_first": f"{waiting_high_first}/{WAITING_HIGH}", "calls": len(calls),
            "live_high_sent": len(latencies),
            "live_high_latency_max_s": round(max(latencies), 3) if len(latencies) == k else None,
            "live_high_latencies_s": [round(x, 3) for x in latencies],
            "live_high_calls_between": between,
            "live_high_after_previous_call_s": [round(x, 3) for x in after_previous]}


def _index(call: dict[str, Any]) -> int | None:
    name = events.name_in(call.get("body") or "")
    return int(name.split()[1]) if name else None


def _status(s: Settings, ctx: Context) -> dict[str, Any]:
    """``status``'s answer timed in this process (fresh connections each time), and the CLI as a process.

    Each answer is split in three: the broker's part (connecting and the queues' passive
    declarations), the database's connection, and its statements."""
    from wanotify.ops.admin.status import collect
    from wanotify.shared.db.engine import make_engine, session_factory

    times, parts = [], []
    for _ in range(3):
        began = time.monotonic()
        probe = _TimedProbe(s.amqp_url)
        engine = make_engine(s.database_url, pool_size=1)
        sql = _time_statements(engine)
        try:
            connected = time.monotonic()
            with session_factory(engine)() as session:
                session.connection()
                connect = time.monotonic() - connected
                snapshot = collect(s, session, probe)
        finally:
            probe.close()
            engine.dispose()
        times.append(time.monotonic() - began)
        parts.append([round(probe.seconds, 3), round(connect, 3), round(sum(sql), 3)])
    began = time.monotonic()
    cli = subprocess.run([sys.executable, "-m", "wanotify.ops.cli", "status", "--json"], env=process_env(s),
                         cwd=PROJECT_ROOT, capture_output=True, timeout=120)
    cli_seconds = time.monotonic() - began
    (ctx.log_dir / "million-status.json").write_bytes(cli.stdout or cli.stderr)
    return {"status_seconds": [round(x, 3) for x in times], "status_max_s": round(max(times), 3),
            "status_parts_s": parts,
            "status_backlog_seen": snapshot["backlog"]["waiting"], "status_cli_process_s": round(cli_seconds, 2),
            "status_cli_ok": cli.returncode == 0 and bool(json.loads(cli.stdout or b"{}"))}


class _TimedProbe(QueueProbe):
    """A queue probe that adds up the time its passive declarations took, connecting included."""

    seconds = 0.0

    def stats(self, names: list[str]) -> list[QueueStats]:
        began = time.monotonic()
        try:
            return super().stats(names)
        finally:
            self.seconds += time.monotonic() - began


def _time_statements(engine: Engine) -> list[float]:
    """A list that each statement run on ``engine`` adds its time to."""
    spent: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _began(conn, _cursor, _statement, _parameters, _context, _many):  # type: ignore[no-untyped-def]
        conn.info["statement_began"] = time.monotonic()

    @event.listens_for(engine, "after_cursor_execute")
    def _ended(conn, _cursor, _statement, _parameters, _context, _many):  # type: ignore[no-untyped-def]
        spent.append(time.monotonic() - conn.info.pop("statement_began"))
    return spent
