"""peer_restart: does the gap survive a worker restart? wanotify, Celery and Dramatiq side by side.

Each system gets 4 messages to send at a ``peer_restart_gap`` gap (4 s: longer than a worker
takes to start, so a forgotten gap shows). After the 2nd call reaches the provider, a rolling
restart: a new worker is started, then the old one is stopped (SIGTERM, its graceful shutdown;
what it had prefetched goes back to the queue) and the new one sends the rest. The gap across
the restart (2nd to 3rd call) is the figure; any gap under the configured one is early.

- wanotify: a ``run sender`` process (the second one waits for the first's lease; the last
  call's time is in PostgreSQL);
- Celery: one worker, ``rate_limit`` = 60/gap per minute (a token bucket in the worker's memory);
- Dramatiq: one worker (one thread) with ``BucketRateLimiter`` and with
  ``ConcurrentRateLimiter`` as a mutex held through the gap (state in Redis).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bench import procs, stats
from bench.config import AMQP_URL
from bench.env import RUN_ID, delete_namespace, fresh_database, namespace, process_env, settings
from bench.fake import FakeProvider
from bench.load import preload
from bench.scenarios import Context, goal
from bench.scenarios.celery_peer import _delete as delete_celery_queue
from bench.scenarios.celery_peer import _enqueue as enqueue_celery
from bench.scenarios.dramatiq_peer import Workers

MESSAGES = 4
RESTART_AFTER = 2


def run(ctx: Context) -> dict[str, Any]:
    gap = ctx.sizes.peer_restart_gap
    metrics: dict[str, Any] = {"gap_s": gap, "messages": MESSAGES, "restart_after_call": RESTART_AFTER}
    goals = []
    for name, system in (("wanotify", _wanotify), ("celery", _celery), ("dramatiq_bucket", _dramatiq("bucket")),
                         ("dramatiq_mutex", _dramatiq("mutex"))):
        fake = FakeProvider(ctx.log_dir, f"restart-{name}-fake")
        try:
            times = system(ctx, fake, gap)
        finally:
            fake.stop()
        between = stats.gaps(times)
        across = between[RESTART_AFTER - 1] if len(between) >= RESTART_AFTER else None
        metrics[name] = {"calls": len(times), "early": sum(1 for g in between if g < gap),
                         "gap_across_restart_s": round(across, 3) if across is not None else None,
                         "min_gap_s": round(min(between), 3) if between else None}
        if name == "wanotify":
            goals += [goal("wanotify: calls sent across a restart", len(times), "==", MESSAGES),
                      goal("wanotify: early calls across a restart", metrics[name]["early"], "==", 0)]
    return {"metrics": metrics, "goals": goals,
            "notes": "a goal for wanotify only: the peers' figures are the comparison"}


def _wait_calls(fake: FakeProvider, n: int, timeout: float) -> list[float]:
    return sorted(c["t"] for c in fake.wait_for(n, timeout=timeout, poll=0.2))


def _rolling(first: list[procs.Proc], start: Callable[[], list[procs.Proc]], fake: FakeProvider,
             gap: float) -> list[float]:
    """With ``first`` sending: wait for RESTART_AFTER calls, start a replacement, stop ``first``, wait for the rest."""
    second: list[procs.Proc] = []
    try:
        _wait_calls(fake, RESTART_AFTER, 60 + gap * RESTART_AFTER * 2)
        second = start()
        for proc in first:
            proc.stop()
        return _wait_calls(fake, MESSAGES, 60 + gap * MESSAGES * 2)
    finally:
        for proc in first + second:
            proc.stop()


def _wanotify(ctx: Context, fake: FakeProvider, gap: float) -> list[float]:
    fresh_database()
    ns = namespace("restart")
    s = settings(ns, gap, fake.url)
    count = iter(range(1, 100))

    def start() -> list[procs.Proc]:
        # the replacement starts consuming once the first has handed its lease over
        proc = procs.Proc(f"restart-wanotify-sender{next(count)}", ["-m", "wanotify.ops.cli", "run", "sender"],
                          process_env(s), ctx.log_dir)
        proc.wait_for_log("consuming", timeout=60)
        return [proc]

    try:
        preload(s, MESSAGES)
        return _rolling(start(), start, fake, gap)
    finally:
        delete_namespace(ns)


def _celery(ctx: Context, fake: FakeProvider, gap: float) -> list[float]:
    queue = namespace("restart", "celery")
    env = {**os.environ, "BENCH_AMQP_URL": AMQP_URL, "BENCH_CELERY_QUEUE": queue, "BENCH_PROVIDER_URL": fake.url,
           "BENCH_CELERY_RATE": f"{round(60 / gap)}/m", "PYTHONUNBUFFERED": "1"}
    count = iter(range(1, 100))

    def start() -> list[procs.Proc]:
        i = next(count)
        proc = procs.Proc(f"restart-celery-worker{i}", [
            "-m", "celery", "-A", "bench.celery_app", "worker", "-c", "1", "-P", "prefork", "-Q", queue,
            "-n", f"r{i}-{RUN_ID}@bench", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            env, ctx.log_dir)
        proc.wait_for_log("ready.", timeout=60)
        return [proc]

    try:
        first = start()
        enqueue_celery(queue, MESSAGES)
        return _rolling(first, start, fake, gap)
    finally:
        delete_celery_queue(queue)


def _dramatiq(limiter: str) -> Callable[[Context, FakeProvider, float], list[float]]:
    def system(ctx: Context, fake: FakeProvider, gap: float) -> list[float]:
        workers = Workers(ctx, f"restart-dramatiq-{limiter}", namespace("restart", f"dramatiq-{limiter}"), limiter, fake,
                          gap)

        def start() -> list[procs.Proc]:
            before = len(workers.procs)
            workers.start(1)
            return workers.procs[before:]

        try:
            first = start()
            workers.enqueue(MESSAGES)
            return _rolling(first, start, fake, gap)
        finally:
            workers.stop()
            workers.delete_queues()
    return system
