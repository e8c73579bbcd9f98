"""Small statistics over call times and rate samples."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p99/max of seconds, in milliseconds."""
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 3)
    return {"p50_ms": ms(percentile(values, 50)), "p99_ms": ms(percentile(values, 99)),
            "max_ms": ms(max(values) if values else None)}


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def pacing(times: Sequence[float], gap: float) -> dict[str, Any]:
    """How well calls at ``times`` (provider arrival) keep a start-to-start ``gap``."""
    between = gaps(sorted(times))
    if not between:
        return {"calls": len(times), "early": 0, "efficiency": None}
    lateness = [g - gap for g in between]
    actual = max(times) - min(times)
    ideal = (len(times) - 1) * gap
    late = summary_ms([max(0.0, x) for x in lateness])
    return {
        "calls": len(times),
        "early": sum(1 for g in between if g < gap),
        "early_by_over_1ms": sum(1 for g in between if g < gap - 0.001),
        "earliest_ms": round(max(0.0, gap - min(between)) * 1000, 3),
        "min_gap_ms": round(min(between) * 1000, 3),
        "lateness_p50_ms": late["p50_ms"], "lateness_p99_ms": late["p99_ms"], "lateness_max_ms": late["max_ms"],
        "efficiency": round(ideal / actual, 5) if actual > 0 else None,
        "calls_per_s": round((len(times) - 1) / actual, 2) if actual > 0 else None,
    }


def rate_series(samples: Sequence[tuple[float, int]]) -> list[tuple[float, float]]:
    """(t, count) samples -> (t, count per second since the previous sample)."""
    return [(t1, (c1 - c0) / (t1 - t0)) for (t0, c0), (t1, c1) in itertools.pairwise(samples) if t1 > t0]


def time_to_reach(samples: Sequence[tuple[float, int]], target: float) -> float | None:
    """When the count first reached ``target``, interpolated between samples."""
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if c1 >= target:
            if c1 == c0:
                return t1
            return t0 + (t1 - t0) * max(0.0, target - c0) / (c1 - c0)
    return None


def sustained_rate(samples: Sequence[tuple[float, int]], total: int, low: float = 0.1,
                   high: float = 0.9) -> float | None:
    """Messages per second between reaching ``low`` and ``high`` of ``total`` (start-up and tail cut)."""
    t_low, t_high = time_to_reach(samples, total * low), time_to_reach(samples, total * high)
    if t_low is None or t_high is None or t_high <= t_low:
        return None
    return total * (high - low) / (t_high - t_low)
