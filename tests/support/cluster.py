"""A private three-node RabbitMQ cluster (``scripts/cluster.sh``) for the cluster tests and the bench.

The nodes run beside the machine's main broker, on their own ports, names and data folders;
``running_cluster`` starts them once and stops them (data and all) afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from wanotify.shared.topology import Topology, delete_topology
from wanotify.shared.urls import amqp_urls

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster.sh"
NODES = (1, 2, 3)


class Cluster:
    """Control of the three nodes: their URLs, a SIGKILL, a restart, which node leads a queue."""

    def __init__(self, directory: str | None = None) -> None:
        self.env = os.environ | ({"CLUSTER_DIR": directory} if directory else {})

    def _script(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self._script("start", timeout=300)

    def stop(self) -> None:
        self._script("stop")

    @property
    def amqp_url(self) -> str:
        """Every node, comma-separated: the AMQP_URL of a process that uses the cluster."""
        return self._script("urls").strip()

    def url(self, node: int) -> str:
        return amqp_urls(self.amqp_url)[node - 1]

    def node_name(self, node: int) -> str:
        return f"wanotify-c{node}@localhost"

    def pid(self, node: int) -> int | None:
        with contextlib.suppress(RuntimeError):
            return int(self._script("pid", str(node)).strip())
        return None

    def kill(self, node: int) -> None:
        """SIGKILL the node's Erlang VM: no clean shutdown, as a crashed machine."""
        self._script("kill", str(node))

    def start_node(self, node: int) -> None:
        self._script("start-node", str(node), timeout=300)

    def stop_node(self, node: int) -> None:
        self._script("stop-node", str(node))

    def restart_node(self, node: int) -> None:
        self.stop_node(node)
        self.start_node(node)

    def running(self) -> list[int]:
        return [n for n in NODES if self.pid(n) is not None]

    def leader(self, queue: str) -> int | None:
        """The node leading a quorum queue, or hosting a classic one; None if unknown just now."""
        for node in self.running():
            listed = self._queues(node, "name", "leader")
            for q in listed:
                if q["name"] == queue and q.get("leader"):
                    return next((n for n in NODES if self.node_name(n) == q["leader"]), None)
            if any(q["name"] == queue for q in self._queues(node, "name", "--local")):
                return node  # a classic queue lives on one node: the one that lists it as local
        return None

    def _queues(self, node: int, *args: str) -> list[dict[str, str]]:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired, ValueError):
            listed: list[dict[str, str]] = json.loads(
                self._script("ctl", str(node), "list_queues", *args, "--formatter", "json", "--quiet", timeout=60))
            return listed
        return []

    def wait_for_leader(self, queue: str, timeout: float = 60.0, other_than: int | None = None) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = self.leader(queue)
            if node is not None and node != other_than:
                return node
            time.sleep(0.5)
        raise AssertionError(f"no leader for {queue} (other than node {other_than}) within {timeout}s")

    def delete_namespace(self, namespace: str, senders: tuple[str, ...] = ()) -> None:
        """Remove a test namespace's queues and exchanges from the cluster."""
        with contextlib.suppress(Exception):
            connection = pika.BlockingConnection([pika.URLParameters(u) for u in amqp_urls(self.amqp_url)])
            try:
                channel = connection.channel()
                listed = self._queues(self.running()[0], "name")
                extra = [q["name"] for q in listed if q["name"].startswith(f"{namespace}.")]
                delete_topology(channel, Topology(namespace), extra, senders)
            finally:
                connection.close()


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start the three nodes (a minute at most), yield their control, and stop them after."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def rabbitmq_cluster() -> Iterator[Cluster]:
    """The three-node cluster, started once for the session's cluster tests and stopped after."""
    with running_cluster() as cluster:
        yield cluster
