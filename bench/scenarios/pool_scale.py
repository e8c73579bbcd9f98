"""pool_scale: ONE ``wanotify run sender`` process serving 50 numbers, each at its own 0.2 s gap.

Fifty sender rows (Cloud API numbers at the fake provider process; a number's
``phone_number_id`` is in the call's path, so the provider double tells the numbers apart), a
backlog of messages spread evenly over them (rows and send commands made directly,
``bench.direct``), then one sender process. Ideally 50 × 5 = 250 calls a second in all.

- **calls/s in all**: the sum of the numbers' paces over the steady window, from when every
  number has made its first call to when the first number made its last (lease pickup at the
  start and the tail at the end are not the pool's pace); a number's pace is its calls in the
  window less one over the time from its first to its last call in it;
- **early calls per number**: a number's consecutive calls, as the provider saw them, closer
  than 0.2 s (worst number reported);
- **RSS** of the sender process (psutil, with children), peak while it drains.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import direct, procs, stats
from bench.config import AMQP_URL
from bench.env import (
    declare_namespace,
    delete_namespace,
    fresh_database,
    namespace,
    process_env,
    sessions_opened,
    settings,
)
from bench.fake import FakeProvider
from bench.profile import Profiler
from bench.scenarios import Context, goal
from wanotify.shared.db.engine import make_engine, session_factory, transaction
from wanotify.shared.db.models import SenderRow
from wanotify.shared.monitoring import QueueProbe
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

NUMBERS = 50
GAP = 0.2
GOAL_RATE = 240
GOAL_RSS_MB = 200


def names() -> list[str]:
    return [f"n{i:02d}" for i in range(NUMBERS)]


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    per_number = ctx.sizes.pool_messages_per_number
    ns = namespace("pool")
    fake = FakeProvider(ctx.log_dir, "pool-fake")
    senders = tuple(names())
    counts = ctx.log_dir / "pool-sender-round-trips.json"
    try:
        env = _add_numbers(fake.url)
        declare_namespace(ns, senders)
        backlog = direct.insert_rows(NUMBERS * per_number, direct.split([(Priority.NORMAL, NUMBERS * per_number)]),
                                     lambda i: f"n{i % NUMBERS:02d}", "'normal'", f"'n' || lpad((i % {NUMBERS})::text, 2, '0')")
        direct.publish_commands(ns, backlog)
        sender = procs.wanotify("sender", process_env(settings(ns, GAP, fake.url), **env), ctx.log_dir,
                                name="pool-sender", round_trips=counts)
        started_cpu = sender.cpu_seconds()  # start-up (imports, connections) is not the calls' cost
        profiler = Profiler(sender.pid, 6, ctx.out_dir, "pool-sender", wall=True).start() if ctx.profile else None
        try:
            calls = _drain(fake, sender, ns, NUMBERS * per_number, timeout=60 + per_number * GAP * 3)
            cpu = sender.cpu_seconds() - started_cpu
        finally:
            sender.stop()
    finally:
        fake.stop()
        delete_namespace(ns, senders=senders)
    result = _report(calls, per_number, sender)
    result["metrics"].update(_round_trips(counts, len(calls)))
    result["metrics"].update({"sender_cpu_ms_per_call": round(cpu * 1000 / len(calls), 3) if calls else None,
                              "pg_sessions_opened": sessions_opened()})
    if profiler is not None:
        result["profile"] = {"sender": profiler.finish()}
    return result


def _round_trips(counts: Path, calls: int) -> dict[str, Any]:
    trips = json.loads(counts.read_text()) if counts.exists() else {}
    total = trips.get("round_trips")
    return {"db_round_trips_per_call": round(total / calls, 2) if total and calls else None}


def _add_numbers(provider_url: str) -> dict[str, str]:
    engine = make_engine(settings("unused").database_url, pool_size=1)
    try:
        with transaction(session_factory(engine)) as session:
            for name in names():
                session.add(SenderRow(name=name, provider="meta", gap_min_seconds=GAP, settings={
                    "phone_number_id": f"pn-{name}", "token_env": f"BENCH_TOKEN_{name.upper()}", "base_url": provider_url}))
    finally:
        engine.dispose()
    return {f"BENCH_TOKEN_{name.upper()}": f"token-{name}" for name in names()}


def _drain(fake: FakeProvider, sender: procs.Proc, ns: str, n: int, timeout: float) -> list[dict[str, Any]]:
    """Sample the sender's RSS until the numbers' queues have nothing ready (one cheap passive
    declaration per queue), then fetch the calls once."""
    deadline = time.monotonic() + timeout
    queues = [Topology(ns).send_queue_for(name, Priority.NORMAL) for name in names()]
    probe = QueueProbe(AMQP_URL)
    try:
        while time.monotonic() < deadline:
            sender.rss()
            time.sleep(0.5)
            if sum(s.ready or 0 for s in probe.stats(queues)) == 0:
                break
    finally:
        probe.close()
    sender.rss()
    return fake.wait_for(n, timeout=max(5.0, deadline - time.monotonic()), poll=0.5)


def _report(calls: list[dict[str, Any]], per_number: int, sender: procs.Proc) -> dict[str, Any]:
    by_number: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        by_number[str(call["path"]).split("/")[-2].removeprefix("pn-")].append(call["t"])
    early = {number: stats.pacing(sorted(ts), GAP)["early"] for number, ts in by_number.items()}
    min_gaps = [min(stats.gaps(sorted(ts))) for ts in by_number.values() if len(ts) > 1]
    rate, window = _steady_rate(by_number)
    worst = max(early.values(), default=None)
    rss = round(sender.peak_rss / 2**20, 1)
    metrics = {"numbers": NUMBERS, "gap_s": GAP, "messages": NUMBERS * per_number, "calls": len(calls),
               "numbers_that_called": len(by_number), "steady_window_s": window, "calls_per_s": rate,
               "ideal_calls_per_s": NUMBERS / GAP, "early_calls_total": sum(early.values()),
               "worst_number_early": worst, "min_gap_ms": round(min(min_gaps) * 1000, 3) if min_gaps else None,
               "sender_peak_rss_mb": rss}
    return {
        "metrics": metrics,
        "goals": [goal("calls sent", len(calls), "==", NUMBERS * per_number),
                  goal(f"calls/s in all ({NUMBERS} numbers at {GAP:g} s)", rate, ">=", GOAL_RATE),
                  goal("early calls, worst number", worst, "==", 0),
                  goal("sender RSS (MB)", rss, "<", GOAL_RSS_MB)],
        "notes": "sum of each number's calls/s over the window in which every number was sending (first call "
                 "of the last number to start .. last call of the first number to finish)",
    }


def _steady_rate(by_number: dict[str, list[float]]) -> tuple[float | None, float | None]:
    """The pool's calls a second over the steady window, and the window's length.

    Each number's pace is its calls in the window less one, over the time from its first to its
    last call in it; the pool's is their sum. The window starts and ends on some number's call,
    not on each number's: its calls less one over the whole window would leave out, for each
    number, the part-gap before its first call in it and the one after its last, about one gap
    a number (50 numbers over 11 s: 2 % fewer calls a second than the numbers made).
    """
    if len(by_number) < NUMBERS:
        return None, None
    start = max(min(ts) for ts in by_number.values())
    end = min(max(ts) for ts in by_number.values())
    if end <= start:
        return None, None
    total = 0.0
    for ts in by_number.values():
        inside = sorted(t for t in ts if start <= t <= end)
        if len(inside) < 2 or inside[-1] <= inside[0]:
            return None, round(end - start, 2)
        total += (len(inside) - 1) / (inside[-1] - inside[0])
    return round(total, 1), round(end - start, 2)
