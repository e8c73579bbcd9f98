"""2. ingest: a burst of member.registered events through ONE notifier process (no sender).

A separate publisher process publishes the burst as fast as it can (confirmed, 400 in flight)
while the notifier validates, renders, logs (PostgreSQL) and publishes each message to the send
queue with confirms. The send queue's depth, sampled once a second, is the ingest count.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.burst import run_burst
from bench.env import delete_namespace, fresh_database, namespace
from bench.scenarios import Context, goal
from bench.scenarios.broker_ceiling import _measure

GOAL_RATE = 3000
GOAL_SHARE = 0.40


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    ns = namespace("ingest")
    try:
        burst = run_burst(ctx, ns, ctx.sizes.ingest_events, "ingest")
        burst.notifier.stop()
    finally:
        delete_namespace(ns)
    ceiling = _ceiling(ctx)
    sustained = burst.metrics["sustained_events_per_s"]
    share = round(sustained / ceiling, 3) if sustained and ceiling else None
    metrics = {**burst.metrics, "broker_ceiling_msgs_per_s": ceiling, "share_of_ceiling": share}
    result: dict[str, Any] = {
        "metrics": metrics,
        "goals": [goal("sustained events/s", sustained, ">=", GOAL_RATE),
                  goal("share of broker ceiling", share, ">=", GOAL_SHARE)],
        "series": burst.series,
        "notes": "sustained = rate between 10 % and 90 % of the burst on the send queue",
    }
    if burst.profile:
        result["profile"] = {"notifier": burst.profile}
    return result


def _ceiling(ctx: Context) -> float | None:
    earlier = ctx.done.get("broker_ceiling", {}).get("metrics", {})
    if earlier.get("ceiling_msgs_per_s"):
        return float(earlier["ceiling_msgs_per_s"])
    measured = asyncio.run(_measure(namespace("ingest", "ceiling"), 10_000, ctx.sizes.broker_in_flight))
    return float(min(measured["publish_msgs_per_s"], measured["consume_msgs_per_s"]))
