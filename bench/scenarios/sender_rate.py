"""4. sender_rate: how fast one sender process can go with no gap at all (gap 0).

A pre-loaded backlog, one sender process, a fake provider process answering at once. Each call
costs a delivery, a claim transaction, the HTTP call and a record transaction, so this is the
sender's own ceiling.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.env import fresh_database
from bench.fake import FakeProvider
from bench.paced import drain, round_trips_per_call
from bench.scenarios import Context, goal

GOAL_RATE = 250
GOAL_ROUND_TRIPS = 2  # one claim (durable before the call) and one outcome


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    n = ctx.sizes.sender_rate_messages
    fake = FakeProvider(ctx.log_dir, "sender_rate-fake")
    try:
        drained = drain(ctx, fake, "sender_rate", n, 0.0, profile_seconds=5 if ctx.profile else 0)
    finally:
        fake.stop()
    calls = drained.calls
    times = sorted(c["t"] for c in calls)
    rate = stats.pacing(times, 0.0)["calls_per_s"]
    between = stats.gaps(times)
    trips = round_trips_per_call(drained)
    result: dict[str, Any] = {
        "metrics": {"messages": n, "calls": len(calls), "calls_per_s": rate,
                    "seconds": round(times[-1] - times[0], 2) if times else None,
                    **{f"interval_{k}": v for k, v in stats.summary_ms(between).items()},
                    "sender_peak_rss_mb": drained.sender_peak_rss_mb, **trips,
                    "sender_cpu_ms_per_call": round(drained.sender_cpu_seconds * 1000 / len(calls), 3) if calls else None,
                    "pg_sessions_opened": drained.pg_sessions_opened},
        "goals": [goal("calls sent", len(calls), "==", n), goal("calls/s at gap 0", rate, ">=", GOAL_RATE),
                  goal("DB round trips per call", trips["db_round_trips_per_call"], "<=", GOAL_ROUND_TRIPS)],
        "series": {"gaps_s": between},
        "notes": "round trips: every statement, BEGIN and COMMIT/ROLLBACK of the sender process over its calls",
    }
    if drained.profile:
        result["profile"] = {"sender": drained.profile}
    return result
