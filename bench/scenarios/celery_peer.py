"""7. celery_peer: the same pace with Celery's rate_limit, for comparison.

Celery on the same RabbitMQ (a queue of its own on the default vhost), a task that POSTs to a
fake provider process, ``rate_limit`` = our pace ("20/s" for 50 ms), 2 worker processes
(``-c 1`` each), N tasks queued at once. Gap violations (calls closer than 50 ms) and throughput
are set next to wanotify's own ``pacing`` figures. A second run with a single worker shows
what the per-worker limit gives at best. Why the limit is per worker: see bench/celery_app.py.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pika
from pika.exceptions import AMQPError

from bench import stats
from bench.config import AMQP_URL
from bench.env import RUN_ID, namespace
from bench.fake import FakeProvider
from bench.procs import Proc
from bench.scenarios import Context, goal


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    gap = 1 / float(sizes.celery_rate.split("/")[0])
    metrics: dict[str, Any] = {"rate_limit": sizes.celery_rate, "gap_s": gap}
    series: dict[str, Any] = {}
    for workers, tasks in ((sizes.celery_workers, sizes.celery_tasks), (1, sizes.celery_tasks // 2)):
        times = _one_run(ctx, workers, tasks)
        metrics[f"workers_{workers}"] = {"tasks": tasks, **stats.pacing(times, gap), **_stalls(times, gap)}
        series[f"workers_{workers}_gaps_s"] = stats.gaps(times)
    ours = ctx.done.get("pacing", {}).get("metrics", {}).get("fast")
    if ours:
        metrics["wanotify"] = {k: ours.get(k) for k in ("calls", "early", "min_gap_ms", "calls_per_s", "efficiency")}
    peer = metrics[f"workers_{sizes.celery_workers}"]
    return {
        "metrics": metrics,
        "goals": [goal(f"celery ×{sizes.celery_workers}: calls sent", peer["calls"], "==", sizes.celery_tasks)],
        "series": series,
        "notes": "not a goal for Celery: its gap violations are the point of comparison",
    }


def _stalls(times: list[float], gap: float) -> dict[str, Any]:
    """Pauses of more than 10 gaps. Once every prefetched task of a worker waits for its rate
    limit, the worker fetches no more messages for a while (celery#3166, docs PR #10291): the
    queue then drains at about one task a second per worker. The rate before the first stall is
    what the rate limit itself lets through."""
    between = stats.gaps(times)
    first = next((i for i, g in enumerate(between) if g > 10 * gap), len(between))
    head = sum(between[:first])
    return {"stalls": sum(1 for g in between if g > 10 * gap), "calls_before_first_stall": first + 1,
            "calls_per_s_before_first_stall": round(first / head, 2) if head > 0 else None}


def _one_run(ctx: Context, workers: int, tasks: int) -> list[float]:
    queue = namespace("celery", f"{workers}w")
    fake = FakeProvider(ctx.log_dir, f"celery-{workers}w-fake")
    env = {**os.environ, "BENCH_AMQP_URL": AMQP_URL, "BENCH_CELERY_QUEUE": queue,
           "BENCH_PROVIDER_URL": fake.url, "BENCH_CELERY_RATE": ctx.sizes.celery_rate, "PYTHONUNBUFFERED": "1"}
    procs: list[Proc] = []
    try:
        for i in range(workers):
            procs.append(Proc(f"celery-{workers}w-worker{i + 1}", [
                "-m", "celery", "-A", "bench.celery_app", "worker", "-c", "1", "-P", "prefork", "-Q", queue,
                "-n", f"w{i + 1}-{RUN_ID}@bench", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-l", "INFO"], env, ctx.log_dir))
        for proc in procs:
            proc.wait_for_log("ready.", timeout=60)
        _enqueue(queue, tasks)
        gap = 1 / float(ctx.sizes.celery_rate.split("/")[0])
        calls = fake.wait_for(tasks, timeout=60 + tasks * gap * 2, poll=1.0)
    finally:
        for proc in procs:
            proc.stop()
        fake.stop()
        _delete(queue)
    return sorted(c["t"] for c in calls)


def _enqueue(queue: str, tasks: int) -> None:
    from bench.celery_app import app, send_whatsapp

    with app.connection_for_write() as connection:
        for i in range(tasks):
            send_whatsapp.apply_async(args=[f"62812{i:08d}", f"Halo Bench {i}"], queue=queue, connection=connection)


def _delete(queue: str) -> None:
    with contextlib.suppress(AMQPError, OSError):
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            channel = connection.channel()
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
        finally:
            connection.close()
