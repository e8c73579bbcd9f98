"""11. cluster_failover: a node dies under load — how long does sending stall, classic vs quorum?

On a private three-node cluster (``scripts/cluster.sh``, beside the main broker), the scenario
of ``tests/support/cluster_chaos.py`` twice, each in a fresh database and namespace: 300
events (100 quick) published one by one while the provider fails 10 % of calls, gap 0.2 s.

- ``classic``: the node hosting the (classic) queues is SIGKILLed and left down for 60 s (20 s
  quick), then started again; the sender process is killed once at a random moment.
- ``quorum``: the node leading the send queues is SIGKILLed and started again, a second node
  is restarted, the sender process is killed once.

The stall after an action = the longest pause between two provider calls from that action
until the next one (so on classic queues, the whole outage). Also:
the longest pause in calls over the whole run, events lost or stuck, confirmed events never
logged, duplicate calls against the kills that landed mid-call, and the time to drain.
"""

from __future__ import annotations

import random
from typing import Any

from bench.config import DATABASE_URL
from bench.env import fresh_database, namespace
from bench.scenarios import Context, goal
from tests.support.cluster import running_cluster
from tests.support.cluster_chaos import ClusterResult, ClusterRun
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory

STALL_GOAL_SECONDS = 10.0


def run(ctx: Context) -> dict[str, Any]:
    events = 100 if ctx.quick else 300
    down = 20.0 if ctx.quick else 60.0
    results: dict[str, ClusterResult] = {}
    with running_cluster() as cluster:
        for plan in ("classic", "quorum"):
            results[plan] = _one(cluster, plan, events, down)
    metrics = {plan: _metrics(r) for plan, r in results.items()} | {"events": events, "classic_down_s": down}
    return {
        "metrics": metrics,
        "goals": [
            goal("quorum: stall around the leader's kill (s)", metrics["quorum"]["stall_at_kill_s"], "<",
                 STALL_GOAL_SECONDS),
            goal("quorum: longest stall at a node kill or restart (s)", metrics["quorum"]["node_stall_max_s"], "<",
                 STALL_GOAL_SECONDS),
            *[goal(f"{plan}: events lost + stuck", m["lost"] + m["stuck"], "==", 0) for plan, m in metrics.items()
              if isinstance(m, dict)],
            *[goal(f"{plan}: confirmed but never logged", m["confirmed_not_logged"], "==", 0)
              for plan, m in metrics.items() if isinstance(m, dict)],
        ],
    }


def _one(cluster: Any, plan: str, events: int, down: float) -> ClusterResult:
    fresh_database()
    settings = Settings.from_env({}).with_(amqp_url=cluster.amqp_url, database_url=DATABASE_URL,
                                           namespace=namespace("cluster", plan), queue_type=plan,
                                           recipient_interval_seconds=0.0)
    engine = make_engine(DATABASE_URL)
    try:
        with FakeProviderServer(timeout_sleep=3.0) as provider:
            run = ClusterRun(settings, provider, session_factory(engine), random.randrange(1_000_000), events, cluster,
                             down_seconds=down, say=lambda line: print(f"  {line}"))
            return run()
    finally:
        engine.dispose()
        for node in (1, 2, 3):
            if node not in cluster.running():
                cluster.start_node(node)
        cluster.delete_namespace(settings.namespace)


def _metrics(r: ClusterResult) -> dict[str, Any]:
    node_stalls = [s for action, s in r.stalls.items() if action != "kill sender"]
    return {
        "stall_at_kill_s": r.stalls.get("kill leader"),
        "node_stall_max_s": max(node_stalls, default=None),
        "stall_at_sender_kill_s": r.stalls.get("kill sender"),
        "longest_pause_s": r.stall_seconds,
        "stalls_s": r.stalls,
        "lost": r.lost, "stuck": r.stuck, "sent": r.sent, "dead": sum(r.dead.values()),
        "confirmed": r.confirmed, "confirmed_not_logged": r.confirmed_not_logged, "publish_retries": r.publish_retries,
        "duplicates": r.duplicates, "kills_mid_call": r.kills_mid_call, "min_gap_s": r.min_gap_seconds,
        "drain_s": r.drain_seconds, "leader_before": r.leader_before, "leader_after": r.leader_after,
        "problems": r.problems(), "logs": r.logs,
    }
