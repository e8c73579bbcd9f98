"""A sender process draining a pre-loaded backlog into a fake provider process.

Shared by ``pacing`` and ``sender_rate``: the backlog is queued first (events through an
in-process notifier), then the sender starts, and the provider's arrival times are the data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from bench import procs
from bench.env import Depths, delete_namespace, namespace, process_env, sessions_opened, settings
from bench.fake import FakeProvider
from bench.load import preload
from bench.profile import Profiler
from bench.scenarios import Context


@dataclass
class Drained:
    calls: list[dict[str, Any]]
    profile: dict[str, Any] | None
    sender_peak_rss_mb: float
    round_trips: dict[str, Any]  # bench.counted's counts for the sender process
    sender_cpu_seconds: float  # user and system, from its start-up's end to the last call
    pg_sessions_opened: int | None  # to the bench database, the backlog's loading included


def drain(ctx: Context, fake: FakeProvider, label: str, n: int, gap: float, profile_seconds: int = 0) -> Drained:
    """Queue ``n`` messages, start a sender at ``gap`` (its database round trips counted), drain."""
    ns = namespace(label)
    s = settings(ns, gap, fake.url)
    fake.reset()
    profile = None
    counts = ctx.log_dir / f"{label}-sender-round-trips.json"
    try:
        preload(s, n)
        sender = procs.wanotify("sender", process_env(s), ctx.log_dir, name=f"{label}-sender", round_trips=counts)
        started_cpu = sender.cpu_seconds()  # start-up (imports, connections) is not the calls' cost
        try:
            profiler = Profiler(sender.pid, profile_seconds, ctx.out_dir, f"{label}-sender", wall=True).start() \
                if profile_seconds else None
            calls = _wait_for_calls(fake, ns, n, timeout=(n - 1) * gap + 60 + n / 50)
            sender.rss()
            cpu = sender.cpu_seconds() - started_cpu
            if profiler:
                profile = profiler.finish()
        finally:
            sender.stop()
    finally:
        delete_namespace(ns)
    trips = json.loads(counts.read_text()) if counts.exists() else {}
    return Drained(calls, profile, round(sender.peak_rss / 2**20, 1), trips, cpu, sessions_opened())


def round_trips_per_call(drained: Drained) -> dict[str, Any]:
    """Every round trip of the sender process over the calls it made (start-up and heartbeats
    included, so a little above the per-call cost), and the transactions that spent them."""
    calls = len(drained.calls)
    total = drained.round_trips.get("round_trips")
    per_call = round(total / calls, 2) if total and calls else None
    by_transaction = [{**t, "per_transaction": round(t["round_trips"] / t["count"], 2)}
                      for t in drained.round_trips.get("transactions", [])]
    per_call_kinds = [t for t in by_transaction if calls and t["count"] >= calls * 0.9]
    return {"db_round_trips": total, "db_round_trips_per_call": per_call, "db_transactions": by_transaction,
            "db_per_call_transactions": " + ".join(f"{t['per_transaction']:g} ({t['first_statement'][:28]}…)"
                                                   for t in per_call_kinds)}


def _wait_for_calls(fake: FakeProvider, ns: str, n: int, timeout: float) -> list[dict[str, Any]]:
    """Watch the queue drain (a cheap passive declare), then fetch the calls: fetching every call
    record again and again would load the fake and this process while the sender is measured."""
    deadline = time.monotonic() + timeout
    depths = Depths(ns)
    try:
        while depths.send() > 0 and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        depths.close()
    return fake.wait_for(n, timeout=max(1.0, deadline - time.monotonic()), poll=0.5)
