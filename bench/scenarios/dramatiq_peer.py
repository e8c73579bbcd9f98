"""dramatiq_peer: the same pace with Dramatiq's rate limiters, for comparison.

Dramatiq on the same RabbitMQ (queues of its own), its limiters' state in Redis, a task that
POSTs to a fake provider process (``bench/dramatiq_app.py``), 2 worker processes (one thread
each), ``dramatiq_tasks`` tasks queued at once, at wanotify's 50 ms gap:

- ``bucket``: ``BucketRateLimiter`` (1 call per 50 ms window);
- ``mutex``: ``ConcurrentRateLimiter(limit=1)`` held for the call and the rest of the gap.

Early calls (closer than 50 ms at the provider), the minimum gap and the rate are set next to
wanotify's ``pacing`` figures.
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

LIMITERS = ("bucket", "mutex")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    gap = sizes.pacing_fast_gap
    metrics: dict[str, Any] = {"gap_s": gap, "workers": sizes.celery_workers, "backend": REDIS_URL}
    series: dict[str, Any] = {}
    goals = []
    for limiter in LIMITERS:
        times = one_run(ctx, limiter, sizes.celery_workers, sizes.dramatiq_tasks, gap)
        metrics[limiter] = {"tasks": sizes.dramatiq_tasks, **stats.pacing(times, gap)}
        series[f"{limiter}_gaps_s"] = stats.gaps(times)
        goals.append(goal(f"dramatiq {limiter} ×{sizes.celery_workers}: calls sent", len(times), "==", sizes.dramatiq_tasks))
    ours = ctx.done.get("pacing", {}).get("metrics", {}).get("fast")
    if ours:
        metrics["wanotify"] = {k: ours.get(k) for k in ("calls", "early", "min_gap_ms", "calls_per_s", "efficiency")}
    return {"metrics": metrics, "goals": goals, "series": series,
            "notes": "not a goal for Dramatiq: its early calls are the point of comparison"}


class Workers:
    """Dramatiq worker processes (one process, one thread each) on ``queue`` with ``limiter``."""

    def __init__(self, ctx: Context, label: str, queue: str, limiter: str, fake: FakeProvider, gap: float) -> None:
        self.ctx, self.label, self.queue = ctx, label, queue
        self.env = {**os.environ, "BENCH_AMQP_URL": AMQP_URL, "BENCH_REDIS_URL": REDIS_URL, "BENCH_DRAMATIQ_QUEUE": queue,
                    "BENCH_DRAMATIQ_LIMITER": limiter, "BENCH_GAP_MS": str(round(gap * 1000)),
                    "BENCH_PROVIDER_URL": fake.url, "PYTHONUNBUFFERED": "1"}
        self.procs: list[Proc] = []
        self.started = 0

    def start(self, count: int) -> None:
        new = []
        for _ in range(count):
            self.started += 1
            new.append(Proc(f"{self.label}-worker{self.started}", [
                "-m", "dramatiq", "bench.dramatiq_app", "--processes", "1", "--threads", "1", "--queues", self.queue],
                self.env, self.ctx.log_dir))
        for proc in new:
            proc.wait_for_log("is ready for action", timeout=60)
        self.procs += new

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.procs = []

    def enqueue(self, tasks: int, start: int = 0) -> None:
        from bench.dramatiq_app import broker, send_whatsapp  # reads BENCH_AMQP_URL, as the bench does

        send_whatsapp.queue_name = self.queue  # the actor's queue of this run
        broker.declare_queue(self.queue)
        for i in range(start, start + tasks):
            send_whatsapp.send(f"62812{i:08d}", f"Halo Bench {i}")

    def delete_queues(self) -> None:
        with contextlib.suppress(AMQPError, OSError):
            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            try:
                channel = connection.channel()
                for name in (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ"):
                    channel.queue_delete(name)
            finally:
                connection.close()


def one_run(ctx: Context, limiter: str, workers: int, tasks: int, gap: float) -> list[float]:
    queue = namespace("dramatiq", f"{limiter}-{RUN_ID}")
    fake = FakeProvider(ctx.log_dir, f"dramatiq-{limiter}-fake")
    peers = Workers(ctx, f"dramatiq-{limiter}", queue, limiter, fake, gap)
    try:
        peers.start(workers)
        peers.enqueue(tasks)
        calls = fake.wait_for(tasks, timeout=60 + tasks * gap * 4, poll=1.0)
    finally:
        peers.stop()
        fake.stop()
        peers.delete_queues()
    return sorted(c["t"] for c in calls)
