"""12. cluster_cost: what quorum queues cost — ingest rate and idle latency, classic vs quorum.

On a private three-node cluster (``scripts/cluster.sh``), for each queue type in a fresh
database and namespace (processes told ``QUEUE_TYPE`` and all three nodes in ``AMQP_URL``):

- ingest: ONE notifier process; the product's ``AsyncEventPublisher`` (in this process, 200
  in flight) publishes a burst of ``member.registered`` events (20,000; 3,000 quick). The send
  queue's depth is read every 0.25 s: **events/s** = events / (last one on the send queue -
  first publish), and the publisher's own rate;
- idle latency: notifier + sender processes, gap 0.2 s, a fake provider process; events
  published one by one (confirmed) with 0.45 s pauses after a warm-up: **latency** =
  provider arrival - time just before the publish, p50/p99/max.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import events, procs, stats
from bench.env import fresh_database, namespace, process_env, settings
from bench.fake import FakeProvider
from bench.scenarios import Context, goal
from tests.support.cluster import Cluster, running_cluster
from wanotify.producers import AsyncEventPublisher, EventPublisher
from wanotify.shared.monitoring import QueueProbe
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

IN_FLIGHT = 200
IDLE_PAUSE = 0.45
IDLE_GAP = 0.2
WARM_UP = 999_999


def run(ctx: Context) -> dict[str, Any]:
    burst = 3_000 if ctx.quick else 20_000
    idle = 10 if ctx.quick else 40
    metrics: dict[str, Any] = {}
    with running_cluster() as cluster:
        for queue_type in ("classic", "quorum"):
            metrics[queue_type] = {"ingest": _ingest(ctx, cluster, queue_type, burst),
                                   "idle": _idle(ctx, cluster, queue_type, idle)}
    classic, quorum = metrics["classic"]["ingest"]["events_per_s"], metrics["quorum"]["ingest"]["events_per_s"]
    metrics["quorum_ingest_share_of_classic"] = round(quorum / classic, 3) if classic and quorum else None
    return {
        "metrics": metrics,
        "goals": [goal(f"{t}: idle events called", metrics[t]["idle"]["calls"], "==", idle) for t in ("classic", "quorum")]
        + [goal(f"{t}: burst events on the send queue", metrics[t]["ingest"]["on_send_queue"], "==", burst)
           for t in ("classic", "quorum")],
    }


def _settings(cluster: Cluster, queue_type: str, part: str, gap: float = 10.0, provider_url: str | None = None) -> Any:
    return settings(namespace("cost", f"{queue_type}-{part}"), gap, provider_url).with_(
        amqp_url=cluster.amqp_url, queue_type=queue_type)


def _ingest(ctx: Context, cluster: Cluster, queue_type: str, count: int) -> dict[str, Any]:
    fresh_database()
    s = _settings(cluster, queue_type, "ingest")
    notifier = procs.wanotify("notifier", process_env(s, QUEUE_TYPE=queue_type), ctx.log_dir,
                              name=f"cost-{queue_type}-notifier")
    send_queue = Topology.of(s).send_queue_for("default", Priority.NORMAL)
    probe = QueueProbe(s.amqp_url)
    try:
        began = time.time()
        published = asyncio.run(_burst(s, count))
        depth, done = 0, None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            (queue,) = probe.stats([send_queue])
            depth = queue.ready or 0
            if depth >= count:
                done = time.time()
                break
            time.sleep(0.25)
    finally:
        probe.close()
        notifier.stop()
        cluster.delete_namespace(s.namespace)
    return {"events": count, "on_send_queue": depth,
            "events_per_s": round(count / (done - began), 1) if done else None,
            "publisher_events_per_s": round(count / (published - began), 1)}


async def _burst(s: Any, count: int) -> float:
    """Publish ``count`` events with IN_FLIGHT confirms outstanding; returns when the last is confirmed."""
    indexes = iter(range(count))
    async with AsyncEventPublisher(s.amqp_url, s.namespace, source="bench", topology=Topology.of(s)) as publisher:
        async def worker() -> None:
            for i in indexes:  # shared iterator: each index is taken by exactly one worker
                await publisher.publish(*events.registered(i))

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.time()


def _idle(ctx: Context, cluster: Cluster, queue_type: str, count: int) -> dict[str, Any]:
    fresh_database()
    fake = FakeProvider(ctx.log_dir, f"cost-{queue_type}-fake")
    s = _settings(cluster, queue_type, "idle", IDLE_GAP, fake.url)
    env = process_env(s, QUEUE_TYPE=queue_type)
    published: dict[str, float] = {}
    try:
        workers = [procs.wanotify(role, env, ctx.log_dir, name=f"cost-{queue_type}-{role}") for role in ("notifier", "sender")]
        try:
            with EventPublisher(s.amqp_url, s.namespace, source="bench", topology=Topology.of(s)) as publisher:
                for i in [WARM_UP, *range(count)]:
                    event_type, data = events.registered(i)
                    published[data["name"]] = time.time()
                    publisher.publish(event_type, data)
                    time.sleep(IDLE_PAUSE)
            calls = fake.wait_for(len(published), timeout=60)
        finally:
            for worker in reversed(workers):
                worker.stop()
    finally:
        fake.stop()
        cluster.delete_namespace(s.namespace)
    arrived = {events.name_in(c["body"] or ""): c["t"] for c in calls}
    latency = [arrived[name] - t for name, t in published.items() if name in arrived]
    warm_up = events.registered(WARM_UP)[1]["name"]
    latencies = [arrived[n] - t for n, t in published.items() if n in arrived and n != warm_up]
    return {"calls": len(latencies), "warm_up_called": len(latency) > len(latencies),
            **{f"latency_{k}": v for k, v in stats.summary_ms(latencies).items()}}
