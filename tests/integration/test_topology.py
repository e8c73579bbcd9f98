"""Declaring and deleting the broker topology on the real broker."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from wanotify.shared.topology import Topology, declare_topology, delete_topology


def _exists(connection: pika.BlockingConnection, queue: str) -> bool:
    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
        return True
    except ChannelClosedByBroker:
        return False


@pytest.fixture
def connection(amqp_url):  # type: ignore[no-untyped-def]
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield conn
    conn.close()


def test_declaring_twice_is_harmless_and_deleting_removes_every_queue(connection, namespace):
    topology = Topology(namespace)
    declare_topology(connection.channel(), topology)
    declare_topology(connection.channel(), topology)  # idempotent: same arguments, no error
    spec = topology.retry_queue_spec(1.5)
    connection.channel().queue_declare(spec.name, durable=True, arguments=spec.arguments)
    names = [s.name for s in topology.queues()] + [spec.name]
    assert all(_exists(connection, name) for name in names)
    delete_topology(connection.channel(), topology, [spec.name])
    assert not any(_exists(connection, name) for name in names)
