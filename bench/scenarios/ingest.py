"""2. ingest: a burst of member.registered events through ONE notifier process (no sender), then
the same burst through ``run notifier --processes 2``.

A separate publisher process publishes the burst as fast as it can (confirmed, 400 in flight)
while the notifier validates, renders, logs (PostgreSQL) and publishes each message to the send
queue with confirms. The send queue's depth, sampled once a second, is the ingest count. The
goal is met by either part (two processes are one of the ways to it where there are cores).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.burst import Burst, run_burst
from bench.env import delete_namespace, fresh_database, namespace
from bench.scenarios import Context, goal
from bench.scenarios.broker_ceiling import _measure

GOAL_RATE = 3000
GOAL_PIPE_SHARE = 0.80  # of the consume-and-publish ("pipe") ceiling: the notifier's broker work alone


PROCESSES = (1, 2)  # one notifier process, then `run notifier --processes 2`


def run(ctx: Context) -> dict[str, Any]:
    bursts = {n: _burst(ctx, n) for n in PROCESSES}
    ceilings = _ceilings(ctx)
    metrics: dict[str, Any] = {"broker_ceiling_msgs_per_s": ceilings["ceiling_msgs_per_s"],
                               "pipe_ceiling_msgs_per_s": ceilings["pipe_msgs_per_s"]}
    goals: list[dict[str, Any]] = []
    for n, burst in bursts.items():
        part = {**burst.metrics, "share_of_ceiling": _share(burst.metrics["sustained_events_per_s"],
                                                            ceilings["ceiling_msgs_per_s"]),
                "share_of_pipe_ceiling": _share(burst.metrics["sustained_events_per_s"], ceilings["pipe_msgs_per_s"])}
        if n == 1:
            metrics.update(part)  # the figures of one process stay where earlier runs had them
        else:
            metrics[f"processes_{n}"] = part
        label = "1 process" if n == 1 else f"--processes {n}"
        goals += [goal(f"{label}: events/s while the publisher runs", part["while_publishing_events_per_s"], ">=", GOAL_RATE),
                  goal(f"{label}: sustained / consume-and-publish ceiling", part["share_of_pipe_ceiling"], ">=",
                       GOAL_PIPE_SHARE)]
    best = max(bursts, key=lambda n: bursts[n].metrics["while_publishing_events_per_s"] or 0)
    goals.append({"label": "ingest goal (either, best configuration)",
                  "value": bursts[best].metrics["while_publishing_events_per_s"],
                  "goal": f"≥ {GOAL_RATE} or ≥ {GOAL_PIPE_SHARE:g} of pipe", "met": any(g["met"] for g in goals)})
    result: dict[str, Any] = {
        "metrics": metrics,
        "goals": goals,
        "series": {**bursts[1].series, **{f"rate_processes_{n}": bursts[n].series["rate"] for n in PROCESSES if n > 1}},
        "notes": "sustained = rate between 10 % and 90 % of the burst on the send queue; the pipe ceiling is "
                 "broker_ceiling's consume-and-publish rate of this run",
    }
    if bursts[1].profile:
        result["profile"] = {"notifier": bursts[1].profile}
    return result


def _burst(ctx: Context, processes: int) -> Burst:
    fresh_database()
    ns = namespace("ingest", f"p{processes}")
    try:
        burst = run_burst(ctx, ns, ctx.sizes.ingest_events, "ingest" if processes == 1 else f"ingest-p{processes}",
                          processes=processes)
        burst.notifier.stop()
    finally:
        delete_namespace(ns)
    return burst


def _share(rate: float | None, ceiling: float | None) -> float | None:
    return round(rate / ceiling, 3) if rate and ceiling else None


def _ceilings(ctx: Context) -> dict[str, float | None]:
    """The broker's ceilings of this run: broker_ceiling's, or measured here when it did not run."""
    measured = ctx.done.get("broker_ceiling", {}).get("metrics", {})
    if not measured.get("ceiling_msgs_per_s"):
        measured = asyncio.run(_measure(namespace("ingest", "ceiling"), 10_000, ctx.sizes.broker_in_flight))
        measured["ceiling_msgs_per_s"] = min(measured["publish_msgs_per_s"], measured["consume_msgs_per_s"])
    return {key: float(measured[key]) if measured.get(key) else None for key in ("ceiling_msgs_per_s", "pipe_msgs_per_s")}
