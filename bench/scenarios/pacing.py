"""3. pacing: does the sender keep the gap, and how close to it does it stay?

A backlog is queued first, then one sender process drains it into a fake provider process.
From the provider's arrival times: calls closer than the gap (must be none), lateness (gap
minus configured gap) p50/p99/max, and efficiency = ideal time (n-1)*gap / actual time.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.env import fresh_database
from bench.fake import FakeProvider
from bench.paced import drain
from bench.scenarios import Context, goal

GOAL_EFFICIENCY = 0.995
GOAL_LATENESS_P50_MS = 0.5


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    sizes = ctx.sizes
    fake = FakeProvider(ctx.log_dir, "pacing-fake")
    metrics: dict[str, Any] = {}
    goals = []
    series: dict[str, Any] = {}
    try:
        for part, n, gap in (("fast", sizes.pacing_fast_messages, sizes.pacing_fast_gap),
                             ("default", sizes.pacing_slow_messages, sizes.pacing_slow_gap)):
            calls = drain(ctx, fake, f"pacing-{part}", n, gap).calls
            times = [c["t"] for c in calls]
            result = {"gap_s": gap, "messages": n, **stats.pacing(times, gap)}
            metrics[part] = result
            series[f"{part}_gaps_s"] = stats.gaps(times)
            goals += [
                goal(f"{part} ({gap:g} s): calls sent", len(calls), "==", n),
                goal(f"{part} ({gap:g} s): early calls", result["early"], "==", 0),
                goal(f"{part} ({gap:g} s): efficiency", result["efficiency"], ">=", GOAL_EFFICIENCY),
            ]
            if part == "fast":  # the 10 s part has too few calls for a meaningful median
                goals.append(goal(f"{part} ({gap:g} s): lateness p50 (ms)", result.get("lateness_p50_ms"), "<=",
                                  GOAL_LATENESS_P50_MS))
    finally:
        fake.stop()
    return {"metrics": metrics, "goals": goals, "series": series,
            "notes": "times are the fake provider's arrival times (taken before it reads the body)"}
