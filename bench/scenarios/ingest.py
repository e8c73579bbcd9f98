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
GOAL_PIPE_SHARE = 0.80  # of the consume-and-publish ("pipe") ceiling: the notifier's broker work alone


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    ns = namespace("ingest")
    try:
        burst = run_burst(ctx, ns, ctx.sizes.ingest_events, "ingest")
        burst.notifier.stop()
    finally:
        delete_namespace(ns)
    ceilings = _ceilings(ctx)
    sustained = burst.metrics["sustained_events_per_s"]
    while_publishing = burst.metrics["while_publishing_events_per_s"]
    share = _share(sustained, ceilings["ceiling_msgs_per_s"])
    pipe_share = _share(sustained, ceilings["pipe_msgs_per_s"])
    metrics = {**burst.metrics, "broker_ceiling_msgs_per_s": ceilings["ceiling_msgs_per_s"],
               "pipe_ceiling_msgs_per_s": ceilings["pipe_msgs_per_s"], "share_of_ceiling": share,
               "share_of_pipe_ceiling": pipe_share}
    by_rate = goal("events/s while the publisher runs", while_publishing, ">=", GOAL_RATE)
    by_share = goal("sustained / consume-and-publish ceiling", pipe_share, ">=", GOAL_PIPE_SHARE)
    result: dict[str, Any] = {
        "metrics": metrics,
        "goals": [by_rate, by_share,
                  {"label": "ingest goal (either of the two)", "value": while_publishing,
                   "goal": f"≥ {GOAL_RATE} or ≥ {GOAL_PIPE_SHARE:g} of pipe", "met": by_rate["met"] or by_share["met"]}],
        "series": burst.series,
        "notes": "sustained = rate between 10 % and 90 % of the burst on the send queue; the pipe ceiling is "
                 "broker_ceiling's consume-and-publish rate of this run",
    }
    if burst.profile:
        result["profile"] = {"notifier": burst.profile}
    return result


def _share(rate: float | None, ceiling: float | None) -> float | None:
    return round(rate / ceiling, 3) if rate and ceiling else None


def _ceilings(ctx: Context) -> dict[str, float | None]:
    """The broker's ceilings of this run: broker_ceiling's, or measured here when it did not run."""
    measured = ctx.done.get("broker_ceiling", {}).get("metrics", {})
    if not measured.get("ceiling_msgs_per_s"):
        measured = asyncio.run(_measure(namespace("ingest", "ceiling"), 10_000, ctx.sizes.broker_in_flight))
        measured["ceiling_msgs_per_s"] = min(measured["publish_msgs_per_s"], measured["consume_msgs_per_s"])
    return {key: float(measured[key]) if measured.get(key) else None for key in ("ceiling_msgs_per_s", "pipe_msgs_per_s")}
