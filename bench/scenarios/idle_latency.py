"""5. idle_latency: an event published while everything is idle -> how soon is the call made?

Notifier and sender processes, a fake provider process, gap 0.2 s. Events are published one by
one (confirmed), with pauses longer than the gap, so every message finds the sender idle and
must go at once. Latency = provider arrival time - time just before the publish. One warm-up
event goes first (new connections in both processes) and is reported on its own.

The database splits each latency in three (same machine, same clock): publish -> the
notifier's transaction (``whatsapp_logs.created_at``), -> the planned start of the call
(``whatsapp_attempts.started_at``, i.e. the sender got and claimed it), -> arrival at the provider.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import create_engine, text

from bench import events, procs, stats
from bench.config import DATABASE_URL
from bench.env import delete_namespace, fresh_database, namespace, process_env, settings
from bench.fake import FakeProvider
from bench.profile import Profiler
from bench.scenarios import Context, goal
from wanotify.producers import EventPublisher

GOAL_P99_MS = 50
WARM_UP = 999_999  # the index of the warm-up event


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    sizes = ctx.sizes
    ns = namespace("idle")
    fake = FakeProvider(ctx.log_dir, "idle-fake")
    s = settings(ns, sizes.idle_gap, fake.url)
    env = process_env(s)
    profile = None
    published: dict[str, float] = {}
    try:
        notifier = procs.wanotify("notifier", env, ctx.log_dir, name="idle-notifier")
        sender = procs.wanotify("sender", env, ctx.log_dir, name="idle-sender")
        try:
            seconds = int(sizes.idle_events * sizes.idle_pause)
            profilers = [Profiler(p.pid, seconds, ctx.out_dir, f"idle-{p.name.split('-')[-1]}", wall=True).start()
                         for p in (notifier, sender)] if ctx.profile else []
            with EventPublisher(s.amqp_url, ns, source="bench") as publisher:
                for i in [WARM_UP, *range(sizes.idle_events)]:
                    event_type, data = events.registered(i)
                    published[data["name"]] = time.time()
                    publisher.publish(event_type, data)
                    time.sleep(sizes.idle_pause)
            calls = fake.wait_for(len(published), timeout=30)
            profile = {p.raw.name.split(".")[0]: p.finish() for p in profilers} or None
        finally:
            sender.stop()
            notifier.stop()
    finally:
        fake.stop()
        delete_namespace(ns)
    arrived = {events.name_in(c["body"] or ""): c["t"] for c in calls}
    latency = {name: arrived[name] - t for name, t in published.items() if name in arrived}
    first = latency.pop(events.registered(WARM_UP)[1]["name"], None)
    latencies = list(latency.values())
    summary = stats.summary_ms(latencies)
    stages = _stages(published, arrived, latency)
    result: dict[str, Any] = {
        "metrics": {**stages, "events": len(published) - 1, "calls": len(latencies), "gap_s": sizes.idle_gap,
                    "warm_up_latency_ms": None if first is None else round(first * 1000, 1),
                    "pause_s": sizes.idle_pause, **{f"latency_{k}": v for k, v in summary.items()}},
        "goals": [goal("calls sent", len(latencies), "==", len(published) - 1),
                  goal("publish→call p99 (ms)", summary["p99_ms"], "<=", GOAL_P99_MS)],
        "series": {"latencies_s": latencies},
    }
    if profile:
        result["profile"] = profile
    return result


def _stages(published: dict[str, float], arrived: dict[str | None, float],
            latency: dict[str, float]) -> dict[str, Any]:
    engine = create_engine(DATABASE_URL)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT l.body, extract(epoch FROM l.created_at), extract(epoch FROM a.started_at) "
                "FROM whatsapp_logs l JOIN whatsapp_attempts a ON a.log_id = l.id")).all()
    finally:
        engine.dispose()
    parts: dict[str, list[float]] = {"to_notifier": [], "to_claimed_start": [], "to_provider": []}
    for body, logged, started in rows:
        name = events.name_in(body)
        if name not in latency or name not in arrived:
            continue
        parts["to_notifier"].append(float(logged) - published[name])
        parts["to_claimed_start"].append(float(started) - float(logged))
        parts["to_provider"].append(arrived[name] - float(started))
    return {f"stage_{k}_p50_ms": stats.summary_ms(v)["p50_ms"] for k, v in parts.items()} | \
        {f"stage_{k}_max_ms": stats.summary_ms(v)["max_ms"] for k, v in parts.items()}
