"""Upgraded from the release before the sender pool: the messages its single send queue held
are sent by this release's sender, nothing is left behind."""

from __future__ import annotations

import pika

from tests.e2e.scenario import requested
from tests.support.broker import queue_depth
from tests.support.processes import wait_until
from wanotify.shared.topology import Topology


def _into_the_old_send_queue(amqp_url: str, topology: Topology) -> int:
    """Move every copy from this release's send queues to ``{ns}.send``, declared as the release
    before the pool declared it: the state an upgrade starts from."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    moved = 0
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(topology.legacy_send_queue, durable=True, arguments={
            "x-queue-type": "classic", "x-max-priority": 10, "x-single-active-consumer": True})
        for queue in topology.send_queues():
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                channel.basic_publish("", topology.legacy_send_queue, body, properties)
                channel.basic_ack(method.delivery_tag)
                moved += 1
    finally:
        connection.close()
    return moved


def test_messages_waiting_in_the_old_send_queue_are_sent_after_the_upgrade(stack, publisher, fake_provider, settings):
    # Given three messages logged and queued, then found in the old release's send queue
    topology = Topology.of(settings)
    notifier = stack.start("notifier")
    for i, priority in enumerate(["low", "normal", "high"]):
        publisher.publish("notification.requested", requested(i, priority))
    wait_until(lambda: sum(queue_depth(settings.amqp_url, q) for q in topology.send_queues()) == 3, 20,
               "three copies on the send queues")
    notifier.terminate()
    assert _into_the_old_send_queue(settings.amqp_url, topology) == 3
    # When this release's sender starts
    stack.start("sender")
    # Then all three are sent, and the old queue is empty
    calls = fake_provider.wait_for_calls(3, timeout=30)
    assert sorted(c["to"] for c in calls) == sorted(f"62812555{i:04d}" for i in range(3))
    assert queue_depth(settings.amqp_url, topology.legacy_send_queue) == 0
