"""A burst of events from a publisher process into ONE notifier process, sampled once a second.

The send queue's ready count is the number of events rendered, logged and confirmed (no sender
runs), so sampling it once a second gives the ingest rate over time. Used by ``ingest`` and
``backlog``; the caller gets the notifier process back, still running.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench import procs, stats
from bench.config import AMQP_URL
from bench.env import Depths, process_env, settings
from bench.profile import Profiler
from bench.scenarios import Context


@dataclass
class Burst:
    notifier: procs.Proc
    metrics: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    profiled: bool = True  # py-spy samples one process: not a --processes N parent, which only waits


def run_burst(ctx: Context, ns: str, count: int, label: str, processes: int = 1) -> Burst:
    notifier = procs.wanotify("notifier", process_env(settings(ns)), ctx.log_dir, name=f"{label}-notifier",
                              extra=("--processes", str(processes)) if processes > 1 else ())
    result_path = ctx.log_dir / f"{label}-publisher.json"
    depths = Depths(ns)
    try:
        began, began_wall = time.monotonic(), time.time()
        publisher = procs.Proc(f"{label}-publisher", [
            "-m", "bench.publisher", "--amqp-url", AMQP_URL, "--namespace", ns, "--count", str(count),
            "--result", str(result_path)], os.environ.copy(), ctx.log_dir)
        burst = Burst(notifier, profiled=processes == 1)
        sampled = _sample(burst, depths, publisher, count, began, ctx, label)
        publisher.wait(60)
        publisher.stop()
    except BaseException:
        notifier.stop()
        raise
    finally:
        depths.close()
    if not result_path.exists():
        notifier.stop()
        raise RuntimeError(f"the publisher failed:\n{publisher.log()[-2000:]}")
    published = json.loads(result_path.read_text())
    _summarise(burst, sampled, count, published["finished"] - began_wall, published["rate"])
    return burst


def _sample(burst: Burst, depths: Depths, publisher: procs.Proc, count: int, began: float, ctx: Context,
            label: str) -> dict[str, list[Any]]:
    """Once a second until every event is on the send queue (bounded by a generous timeout)."""
    series: dict[str, list[Any]] = {"done": [(0.0, 0)], "waiting": [], "rss_mb": []}
    profiler = None
    timeout = 60 + count / 300
    tick = began
    while True:
        tick += 1.0
        time.sleep(max(0.0, tick - time.monotonic()))
        t = time.monotonic() - began
        done = depths.send()
        series["done"].append((round(t, 3), done))
        series["waiting"].append((round(t, 3), depths.notifier()))
        series["rss_mb"].append((round(t, 3), round(burst.notifier.rss() / 2**20, 1)))
        if ctx.profile and burst.profiled and profiler is None and t >= 3:
            seconds = int(min(20, max(3, count / 3000 - 6)))
            profiler = Profiler(burst.notifier.pid, seconds, ctx.out_dir, f"{label}-notifier").start()
        if done >= count:
            break
        if t > timeout or not burst.notifier.running():
            print(f"  {label}: stopped sampling at {done}/{count} after {t:.0f}s", file=sys.stderr)
            break
    if publisher.running():
        publisher.wait(60)
    if profiler is not None:
        burst.profile = profiler.finish()
    return series


def _summarise(burst: Burst, series: dict[str, list[Any]], count: int, publisher_seconds: float,
               publisher_rate: float) -> None:
    done = series["done"]
    finished = stats.time_to_reach(done, count)
    at_publisher_end = _count_at(done, publisher_seconds)
    drained = done[-1][1] - at_publisher_end
    burst.series = {"rate": stats.rate_series(done), **series}
    burst.metrics = {
        "events": count,
        "enqueued": done[-1][1],
        "seconds_to_enqueue_all": round(finished, 2) if finished else None,
        "sustained_events_per_s": _round(stats.sustained_rate(done, count)),
        "overall_events_per_s": _round(count / finished if finished else None),
        "while_publishing_events_per_s": _round(at_publisher_end / publisher_seconds if publisher_seconds else None),
        "after_publishing_events_per_s": _round(drained / (finished - publisher_seconds)
                                                if finished and finished > publisher_seconds + 0.5 else None),
        "publisher_events_per_s": _round(publisher_rate),
        "publisher_seconds": round(publisher_seconds, 2),
        "notifier_queue_peak": max((w for _, w in series["waiting"]), default=0),
        "notifier_peak_rss_mb": round(burst.notifier.peak_rss / 2**20, 1),
    }


def _count_at(samples: list[tuple[float, int]], t: float) -> float:
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t0 <= t <= t1 and t1 > t0:
            return c0 + (c1 - c0) * (t - t0) / (t1 - t0)
    return samples[-1][1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value)
