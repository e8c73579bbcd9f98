"""On a three-node RabbitMQ cluster with quorum queues: processes move to a live node when
theirs dies, a poison message is parked, and a leader's death loses nothing, stalls sending
only briefly and keeps the gap and the priority order.

The cluster is private (``scripts/cluster.sh``: its own ports, names and data) and started
once for these tests; the machine's main broker is not touched.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator

import pika
import pytest

from tests.chaos import DRAIN_SECONDS
from tests.e2e.scenario import member, requested
from tests.support import cluster as cluster_support
from tests.support.cluster import Cluster
from tests.support.cluster_chaos import GAP, ClusterRun, ClusterStack
from tests.support.processes import wait_until
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.broker import connect
from wanotify.shared.config import Settings
from wanotify.shared.priority import Priority
from wanotify.shared.topology import QUORUM_DELIVERY_LIMIT, Topology, declare_topology
from wanotify.shared.urls import amqp_urls

# They SIGKILL and restart cluster nodes, and take the machine's two cores for minutes: run alone.
pytestmark = [pytest.mark.cluster, pytest.mark.outage]
JITTER = 0.01  # the in-process provider stamps arrivals under the test's own load
rabbitmq_cluster = cluster_support.rabbitmq_cluster  # the session fixture: the cluster starts once


@pytest.fixture
def cluster_settings(rabbitmq_cluster: Cluster, database_url: str, sessions) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    namespace = f"cl-{uuid.uuid4().hex[:8]}"
    yield Settings.from_env({}).with_(
        amqp_url=rabbitmq_cluster.amqp_url, database_url=database_url, namespace=namespace, queue_type="quorum",
        send_gap_seconds=GAP, retry_delay_seconds=0.5, max_retries=3, recipient_interval_seconds=0.0)
    rabbitmq_cluster.delete_namespace(namespace)


def _revive(cluster: Cluster) -> None:
    for node in (1, 2, 3):
        if node not in cluster.running():
            cluster.start_node(node)


def test_a_connection_moves_to_a_live_node_when_its_node_is_killed(rabbitmq_cluster: Cluster, cluster_settings):
    async def scenario() -> tuple[int, int | None]:
        connection = await connect(cluster_settings.amqp_url, "wanotify-test")
        try:
            before = int(connection.url.port or 0)
            node = amqp_urls(cluster_settings.amqp_url).index(str(connection.url)) + 1
            # When the node the connection uses is SIGKILLed
            rabbitmq_cluster.kill(node)
            # Then within seconds the same connection is open again, on another node, and works
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (connection.url.port == before or not connection.connected.is_set()):
                await asyncio.sleep(0.1)
            channel = await connection.channel()
            await channel.declare_queue(f"{cluster_settings.namespace}.probe", durable=True,
                                        arguments={"x-queue-type": "quorum"})
            return before, connection.url.port
        finally:
            await connection.close()

    try:
        before, after = asyncio.run(scenario())
        assert after != before
    finally:
        _revive(rabbitmq_cluster)


def test_a_publisher_and_the_status_command_use_any_live_node(rabbitmq_cluster: Cluster, cluster_settings,
                                                              fake_provider: FakeProviderServer):
    # Given the first node listed in AMQP_URL is down
    rabbitmq_cluster.stop_node(1)
    try:
        # Then a publisher still publishes (confirmed) through another node
        with EventPublisher(cluster_settings.amqp_url, cluster_settings.namespace,
                            topology=Topology.of(cluster_settings)) as publisher:
            publisher.publish("member.registered", member(1))
        # and `wanotify status` reads the queues, saying they are quorum queues on the three nodes
        status = json.loads(ClusterStack(cluster_settings, fake_provider).cli("status", "--json"))
        assert status["queue_type"] == "quorum"
        assert status["brokers"] == ["127.0.0.1:5681", "127.0.0.1:5682", "127.0.0.1:5683"]
        notifier = next(q for q in status["queues"] if q["name"] == f"{cluster_settings.namespace}.notifier")
        assert notifier["ready"] == 1
    finally:
        rabbitmq_cluster.start_node(1)


def test_a_poison_message_is_parked_after_the_delivery_limit(rabbitmq_cluster: Cluster, cluster_settings):
    topology = Topology.of(cluster_settings)
    queue = topology.send_queue_for("default", Priority.LOW)
    connection = pika.BlockingConnection([pika.URLParameters(u) for u in amqp_urls(cluster_settings.amqp_url)])
    try:
        channel = connection.channel()
        declare_topology(channel, topology)
        channel.confirm_delivery()
        channel.basic_publish("", queue, b"{}", pika.BasicProperties(delivery_mode=2))
        # When a consumer keeps giving the message back (as a crashing sender would)
        deliveries = 0

        def give_back(ch, method, _properties, _body):  # type: ignore[no-untyped-def]
            nonlocal deliveries
            deliveries += 1
            ch.basic_nack(method.delivery_tag, requeue=True)

        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(queue, give_back)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _depth(channel, topology.send_dead_queue) == 0:
            connection.process_data_events(0.2)
        # Then after the delivery limit it is parked in the dead queue instead of going round forever
        assert _depth(channel, topology.send_dead_queue) == 1
        assert deliveries == QUORUM_DELIVERY_LIMIT + 1
    finally:
        connection.close()


def _depth(channel, queue: str) -> int:  # type: ignore[no-untyped-def]
    return int(channel.queue_declare(queue, passive=True).method.message_count)


@pytest.mark.timeout(DRAIN_SECONDS + 240)
def test_killing_the_leader_restarting_a_node_and_killing_the_sender_lose_nothing(
        rabbitmq_cluster: Cluster, cluster_settings, sessions):
    seed = random.randrange(1_000_000)
    with FakeProviderServer(timeout_sleep=3.0) as provider:
        result = ClusterRun(cluster_settings, provider, sessions, seed, events=300, cluster=rabbitmq_cluster)()
    _revive(rabbitmq_cluster)
    print(result)
    # Every event ends as one sent or dead row; nothing is stuck; duplicates only from kills mid-call
    assert result.problems() == [], f"seed {seed}: {result}"
    assert result.sent + sum(result.dead.values()) == 300
    # every event the broker confirmed to the publisher was logged
    assert result.confirmed == 300 and result.confirmed_not_logged == 0
    # sending went on within seconds of each node's death or restart: no stall longer than 10 s
    # (a killed sender's successor waits for its lease to expire: that pause is the sender's design)
    node_stalls = {action: s for action, s in result.stalls.items() if action != "kill sender"}
    assert max(node_stalls.values()) < 10, result.stalls
    # and no call was ever earlier than the gap after the one before
    assert result.min_gap_seconds is not None and result.min_gap_seconds >= GAP - JITTER
    # the send queues' leader moved off the killed node while it was down
    assert result.leader_after_kill not in (None, result.leader_before)


def test_priority_order_holds_after_the_leader_moves(rabbitmq_cluster: Cluster, cluster_settings, fake_provider):
    # Given a running notifier and sender on quorum queues
    stack = ClusterStack(cluster_settings.with_(send_gap_seconds=0.5), fake_provider)
    try:
        stack.start("notifier")
        stack.start("sender")
        send_queue = Topology.of(cluster_settings).send_queue_for("default", Priority.HIGH)
        leader = rabbitmq_cluster.wait_for_leader(send_queue)
        # When the node leading the send queues is killed, a new leader takes over, and the node comes back
        rabbitmq_cluster.kill(leader)
        moved = rabbitmq_cluster.wait_for_leader(send_queue, other_than=leader)
        rabbitmq_cluster.start_node(leader)
        with EventPublisher(cluster_settings.amqp_url, cluster_settings.namespace,
                            topology=Topology.of(cluster_settings)) as publisher:
            for i in range(3):
                publisher.publish("notification.requested", requested(i, "low"))
            for i in range(3, 6):
                publisher.publish("notification.requested", requested(i, "normal"))
            fake_provider.wait_for_calls(2, timeout=30)
            publisher.publish("notification.requested", requested(9, "high"))
        calls = fake_provider.wait_for_calls(7, timeout=60)
        order = [c["body"].split("(")[1].split(")")[0] for c in calls]
        print(f"leader {leader} -> {moved}; order: {order}")
        # Then the high message is the very next call, and the rest go by priority
        assert order[2] == "high-9"
        assert order[3:] == [p for p in ["normal-3", "normal-4", "normal-5", "low-0", "low-1", "low-2"] if p not in order[:2]]
    finally:
        stack.close()
        _revive(rabbitmq_cluster)
        wait_until(lambda: len(rabbitmq_cluster.running()) == 3, 60, "three running nodes")
