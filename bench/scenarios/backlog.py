"""6. backlog: a big waiting backlog, then priority and memory.

1. A burst of normal-priority events through ONE notifier process makes the backlog (time to
   enqueue it all is measured as in ``ingest``).
2. A few high-priority events are published behind it; a sender (gap 0, fake provider process)
   then starts and must take exactly those first.
3. While it drains for a short while, more high-priority events arrive one by one: each must
   overtake the backlog (latency, and normal calls that went between publish and its call).
4. Resident memory (RSS, psutil) of the notifier and the sender processes, peak over the run.
"""

from __future__ import annotations

import time
from typing import Any

from bench import events, procs
from bench.burst import run_burst
from bench.env import Depths, delete_namespace, fresh_database, namespace, process_env, settings
from bench.fake import FakeProvider
from bench.scenarios import Context, goal
from wanotify.producers import EventPublisher

GOAL_RSS_MB = 150
HIGH = 2_000_000  # index of the first high-priority event


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    n, k = ctx.sizes.backlog_messages, ctx.sizes.backlog_high
    ns = namespace("backlog")
    fake = FakeProvider(ctx.log_dir, "backlog-fake")
    s = settings(ns, 0.0, fake.url)
    try:
        burst = run_burst(ctx, ns, n, "backlog")
        try:
            with EventPublisher(s.amqp_url, ns, source="bench") as publisher:
                _queue_high(publisher, ns, n, range(HIGH, HIGH + k))
                burst.notifier.rss()
                live, sender = _drain_with_live_highs(ctx, s, fake, publisher, k)
        finally:
            burst.notifier.stop()
    finally:
        fake.stop()
        delete_namespace(ns)
    calls = live.pop("calls")
    first = [c for c in calls[:k] if _is_high(c)]
    metrics = {
        **{key: burst.metrics[key] for key in ("events", "seconds_to_enqueue_all", "sustained_events_per_s",
                                             "overall_events_per_s", "publisher_events_per_s")},
        "high_first_of_k": f"{len(first)}/{k}",
        **live,
        "notifier_peak_rss_mb": round(burst.notifier.peak_rss / 2**20, 1),
        "sender_peak_rss_mb": round(sender.peak_rss / 2**20, 1),
    }
    return {
        "metrics": metrics,
        "goals": [goal(f"first {k} calls are the high ones", len(first), "==", k),
                  goal("live high overtook the backlog", live["live_high_sent"], "==", k),
                  goal("notifier RSS (MB)", metrics["notifier_peak_rss_mb"], "<", GOAL_RSS_MB),
                  goal("sender RSS (MB)", metrics["sender_peak_rss_mb"], "<", GOAL_RSS_MB)],
        "series": {"rate": burst.series["rate"], "rss_mb": burst.series["rss_mb"]},
    }


def _queue_high(publisher: EventPublisher, ns: str, n: int, indexes: range) -> None:
    for i in indexes:
        publisher.publish(*events.payment_link(i))
    depths = Depths(ns)
    try:
        deadline = time.monotonic() + 30
        while depths.send() < n + len(indexes) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        depths.close()


def _drain_with_live_highs(ctx: Context, s: Any, fake: FakeProvider, publisher: EventPublisher,
                           k: int) -> tuple[dict[str, Any], procs.Proc]:
    sender = procs.wanotify("sender", process_env(s), ctx.log_dir, name="backlog-sender")
    published: dict[str, float] = {}
    try:
        window = ctx.sizes.backlog_drain_seconds
        began = time.monotonic()
        for j in range(k):
            time.sleep(max(0.0, began + window * (j + 1) / (k + 1) - time.monotonic()))
            sender.rss()
            event_type, data = events.payment_link(HIGH + k + j)
            published[data["name"]] = time.time()
            publisher.publish(event_type, data)
        while time.monotonic() < began + window:
            sender.rss()
            time.sleep(0.25)
    finally:
        sender.stop()
    calls = fake.calls()
    return {"calls": calls, **_live_report(calls, published)}, sender


def _live_report(calls: list[dict[str, Any]], published: dict[str, float]) -> dict[str, Any]:
    latencies, overtaken_by = [], []
    for name, t in published.items():
        arrival = next((c["t"] for c in calls if events.name_in(c["body"] or "") == name), None)
        if arrival is None:
            continue
        latencies.append(arrival - t)
        overtaken_by.append(sum(1 for c in calls if t <= c["t"] < arrival and not _is_high(c)))
    return {
        "calls_during_drain": len(calls),
        "live_high_sent": len(latencies),
        "live_high_latency_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "normal_calls_before_live_high_max": max(overtaken_by) if overtaken_by else None,
    }


def _is_high(call: dict[str, Any]) -> bool:
    return "pembayaran" in (call.get("body") or "")
