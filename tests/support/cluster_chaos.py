"""Node failures on the local three-node cluster while events are in flight, with an exact account.

One run publishes ``events`` events (confirmed, one by one, while the failures happen) with the
provider failing some calls, and at random moments:

- ``quorum`` plan: SIGKILLs the node leading the send queues and starts it again later, restarts
  a second node (after the first is back: two nodes down would cost the majority), and kills
  the sender process (replaced at once);
- ``classic`` plan: SIGKILLs the node hosting the (classic) send queues and leaves it down for
  ``down_seconds``, and kills the sender process (before or after the outage: while the node
  is down no sender can start at all).

Then the account of ``tests/chaos.py`` (lost, stuck, unexplained dead rows, no duplicate call,
parked "outcome unknown" <= kills mid-call), plus what a cluster adds: every event the broker confirmed to the
publisher is in the log, the longest sending stall (the largest pause between two provider
calls), and the shortest spacing of calls (no call earlier than the gap after the one before).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.chaos import Result, Run
from tests.e2e.scenario import gaps, member
from tests.support.cluster import NODES, Cluster
from tests.support.stack import Stack
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.producers.publisher import EventPublisher, PublishError
from wanotify.shared.config import Settings
from wanotify.shared.priority import Priority
from wanotify.shared.topology import Topology

GAP = 0.2
FAILURE_RATE = 0.1
CLUSTER_SETTINGS = {"send_gap_seconds": GAP, "retry_delay_seconds": 0.5, "max_retries": 3}
SENDER_ENV = {"RETRY_SWEEP_SECONDS": 2}
PUBLISH_PAUSE = 0.05  # between events: publishing overlaps the first failures


@dataclass
class ClusterResult(Result):
    plan: str = ""
    confirmed: int = 0
    confirmed_not_logged: int = 0
    publish_retries: int = 0
    stall_seconds: float = 0.0  # the longest pause between two provider calls
    # action -> the longest pause in calls from it until the next action (or the end of the run)
    stalls: dict[str, float] = field(default_factory=dict)
    min_gap_seconds: float | None = None
    leader_before: int | None = None
    leader_after_kill: int | None = None  # the send queues' new leader while the killed node is down
    leader_after: int | None = None
    node_events: list[str] = field(default_factory=list)
    logs: str = ""  # where the processes' logs were kept, when the run went wrong

    def problems(self) -> list[str]:
        found = super().problems()
        if self.confirmed_not_logged:
            found.append(f"{self.confirmed_not_logged} confirmed events were never logged")
        return found


class ClusterStack(Stack):
    """The product's processes, told the queue type."""

    def env(self, **extra: object) -> dict[str, str]:
        return super().env(**({"QUEUE_TYPE": self.settings.queue_type} | extra))


class ClusterRun(Run):
    """One run on the cluster; ``plan`` is ``quorum`` or ``classic`` (see the module's text)."""

    def __init__(self, settings: Settings, provider: FakeProviderServer, sessions: sessionmaker[Session], seed: int,
                 events: int, cluster: Cluster, down_seconds: float = 60.0, say: Callable[[str], None] = print) -> None:
        super().__init__(settings, provider, sessions, seed, events, say)
        self.settings = settings.with_(**CLUSTER_SETTINGS)
        self.stack = ClusterStack(self.settings, provider)
        self.cluster = cluster
        self.down_seconds = down_seconds
        self.result = ClusterResult(seed=seed, events=events, plan=settings.queue_type)
        self.confirmed: set[str] = set()
        self.action_times: dict[str, float] = {}
        self.send_queue = Topology.of(self.settings).send_queue_for("default", Priority.NORMAL)

    def __call__(self) -> ClusterResult:
        try:
            self._run()
        except BaseException:
            self._keep_logs()
            raise
        finally:
            if self.result.problems():
                self._keep_logs()
            self.stack.close()
        return self.result

    def _keep_logs(self) -> None:
        """Copy the processes' logs somewhere that outlives the run (they are deleted with it)."""
        if self.result.logs:
            return
        folder = Path(tempfile.mkdtemp(prefix=f"wanotify-cluster-{self.result.plan}-{self.result.seed}-"))
        for n, proc in enumerate(self.stack.procs):
            shutil.copy(proc.log_path, folder / f"{n:02d}-{proc.name}.log")
        self.result.logs = str(folder)

    def _run(self) -> None:
        self.provider.set_failure_rate(FAILURE_RATE, "5xx", seed=self.result.seed)
        self.notifier = self.stack.start("notifier")
        self.senders.append(self.stack.start("sender", **SENDER_ENV))
        started = time.monotonic()
        self.result.leader_before = self.cluster.wait_for_leader(self.send_queue)
        publishing = threading.Thread(target=self._publish_all, name="publisher")
        publishing.start()
        for action in self._plan():
            time.sleep(self.rng.uniform(1.0, 3.0))
            self.say(f"{time.strftime('%X')} {self.result.plan}: {action} ({len(self.provider.calls())} calls so far)")
            self.action_times[action] = time.time()
            self._act(action)
            self.result.actions.append(action)
        publishing.join()
        self._drain(started)
        self.result.leader_after = self.cluster.leader(self.send_queue)
        self._account()
        self._account_cluster()

    def _plan(self) -> list[str]:
        if self.result.plan == "quorum":
            actions = ["kill leader", "start killed node", "restart another node"]
            actions.insert(self.rng.randrange(len(actions) + 1), "kill sender")
        else:
            # Not while the queues' node is down: no sender can start then (its queues are gone).
            actions = ["kill leader", "wait while it is down", "start killed node"]
            actions.insert(self.rng.choice([0, len(actions)]), "kill sender")
        return actions

    def _act(self, action: str) -> None:
        if action == "kill leader":
            self.killed = self.cluster.leader(self.send_queue) or self.result.leader_before or 1
            self.cluster.kill(self.killed)
            self.result.node_events.append(f"{time.time():.1f} killed node {self.killed}")
            if self.result.plan == "quorum":  # the survivors elect a new leader within seconds
                self.result.leader_after_kill = self.cluster.wait_for_leader(self.send_queue, 30, self.killed)
        elif action == "wait while it is down":
            time.sleep(self.down_seconds)
        elif action == "start killed node":
            self.cluster.start_node(self.killed)
            self.result.node_events.append(f"{time.time():.1f} started node {self.killed}")
        elif action == "restart another node":
            other = self.rng.choice([n for n in NODES if n != self.killed])
            self.cluster.restart_node(other)
            self.result.node_events.append(f"{time.time():.1f} restarted node {other}")
        else:
            super()._act(action)  # kill sender

    def _publish_all(self) -> None:
        """Publish every event, each retried until the broker confirms it (as an upstream would)."""
        with EventPublisher(self.settings.amqp_url, self.settings.namespace, source="cluster",
                            topology=Topology.of(self.settings), reconnect_attempts=5) as publisher:
            for i in range(self.result.events):
                self.confirmed.add(self._publish_one(publisher, i))
                time.sleep(PUBLISH_PAUSE)

    def _publish_one(self, publisher: EventPublisher, i: int) -> str:
        event_id = str(uuid.uuid4())
        while True:
            try:
                return publisher.publish("member.registered", member(i), event_id=event_id)
            except PublishError as exc:  # not confirmed: the upstream tries again, same event_id
                self.result.publish_retries += 1
                self.say(f"publish {i} not confirmed ({exc}); trying again")
                time.sleep(0.5)

    def _account_cluster(self) -> None:
        r = self.result
        r.confirmed = len(self.confirmed)
        with self.sessions() as session:
            logged = {str(v) for v in session.scalars(text(
                "SELECT event_id::text FROM whatsapp_logs UNION SELECT event_id FROM dead_events"))}
        r.confirmed_not_logged = len(self.confirmed - logged)
        calls = sorted(self.provider.calls(), key=lambda c: c["t"])
        spacing = gaps(calls)
        r.stall_seconds = round(max(spacing, default=0.0), 2)
        moments = sorted(self.action_times.items(), key=lambda item: item[1])
        ends = [at for _, at in moments[1:]] + [float("inf")]
        r.stalls = {action: stall_within(calls, at, end) for (action, at), end in zip(moments, ends, strict=True)}
        r.min_gap_seconds = round(min(spacing), 4) if spacing else None


def stall_within(calls: list[dict[str, Any]], start: float, end: float) -> float:
    """The longest pause in sending that overlaps [start, end): between two consecutive calls,
    the first before ``end`` and the second after ``start``, counted only up to ``end`` (what
    goes on after it is the next action's)."""
    times = sorted(c["t"] for c in calls)
    pauses = [min(b, end) - a for a, b in itertools.pairwise(times) if b > start and a < end]
    return round(max(pauses, default=0.0), 2)
