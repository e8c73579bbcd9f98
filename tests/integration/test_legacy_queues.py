"""After an upgrade from the release before the sender pool, nothing waiting in its queues is
stranded: copies in its one send queue move to the queue of their priority, and a retry queue
of the same name, declared with the old arguments, is converted with its copies."""

from __future__ import annotations

import asyncio
import json

import pika
import pytest

from tests.support.broker import queue_depth
from wanotify.consumers.sender.upgrade import HOLD_SUFFIX, UNDECODABLE, LegacyQueues
from wanotify.shared.broker import SendQueuePublisher, confirmed_channel, connect
from wanotify.shared.messages import REASON_HEADER, SendCommand
from wanotify.shared.priority import Priority
from wanotify.shared.topology import RETURN_HEADER, Topology

OLD_RETRY_MS = 600_000  # long enough that nothing expires during the test


def _command(log_id: int, priority: Priority) -> SendCommand:
    return SendCommand(log_id, 1, priority, f"evt-{log_id}", "welcome_new_member")


def _old_release(amqp_url: str, namespace: str, send: list[bytes], retry: list[bytes]) -> None:
    """The queues the release before the pool declared, with copies in them."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(f"{namespace}.send", durable=True, arguments={
            "x-queue-type": "classic", "x-max-priority": 10, "x-single-active-consumer": True})
        channel.queue_declare(f"{namespace}.send.retry.{OLD_RETRY_MS}ms", durable=True, arguments={
            "x-queue-type": "classic", "x-message-ttl": OLD_RETRY_MS, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{namespace}.send"})
        for queue, bodies in ((f"{namespace}.send", send), (f"{namespace}.send.retry.{OLD_RETRY_MS}ms", retry)):
            for body in bodies:
                channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def _messages(amqp_url: str, queue: str) -> list[tuple[bytes, dict[str, object]]]:
    """(body, headers) of every message in ``queue``, left in place (unacked, they go back)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return found
            found.append((body, dict(properties.headers or {})))
    finally:
        connection.close()


async def _with_legacy(amqp_url: str, namespace: str, work):  # type: ignore[no-untyped-def]
    connection = await connect(amqp_url, "wanotify-test-upgrade")
    try:
        publisher = SendQueuePublisher(await confirmed_channel(connection, prefetch=1), Topology(namespace))
        await publisher.declare()
        legacy = LegacyQueues(connection, publisher, Topology(namespace))
        publisher.prepare_delay_queue = legacy.prepare
        return await work(legacy, publisher)
    finally:
        await connection.close()


def test_copies_in_the_old_send_queue_move_to_the_queue_of_their_priority(amqp_url, namespace):
    commands = [_command(1, Priority.LOW), _command(2, Priority.HIGH), _command(3, Priority.NORMAL)]
    _old_release(amqp_url, namespace, [c.encode() for c in commands] + [b"not json"], [])

    moved = asyncio.run(_with_legacy(amqp_url, namespace, lambda legacy, _p: legacy.move_waiting()))

    assert moved == 4
    assert queue_depth(amqp_url, f"{namespace}.send") == 0
    topology = Topology(namespace)
    for command in commands:
        [(body, _headers)] = _messages(amqp_url, topology.send_queue_for("default", command.priority))
        assert json.loads(body)["log_id"] == command.log_id
    [(body, headers)] = _messages(amqp_url, topology.send_dead_queue)
    assert body == b"not json" and headers[REASON_HEADER] == UNDECODABLE


def test_an_old_retry_queue_is_converted_on_first_use_and_keeps_its_copies(amqp_url, namespace):
    waiting = [_command(7, Priority.HIGH), _command(8, Priority.LOW)]
    _old_release(amqp_url, namespace, [], [c.encode() for c in waiting])
    new = _command(9, Priority.NORMAL)

    async def retry(_legacy: LegacyQueues, publisher: SendQueuePublisher) -> str:
        return await publisher.publish_retry(new, OLD_RETRY_MS / 1000)

    queue = asyncio.run(_with_legacy(amqp_url, namespace, retry))

    assert queue == f"{namespace}.send.retry.{OLD_RETRY_MS}ms"
    topology = Topology(namespace)
    copies = {json.loads(body)["log_id"]: headers[RETURN_HEADER] for body, headers in _messages(amqp_url, queue)}
    assert copies == {c.log_id: topology.send_queue_for("default", c.priority) for c in [*waiting, new]}
    # the queue now has this release's arguments: declaring it so is accepted
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        spec = topology.retry_queue_spec(OLD_RETRY_MS / 1000)
        connection.channel().queue_declare(spec.name, durable=True, arguments=spec.arguments)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare(queue + HOLD_SUFFIX, passive=True)  # the hold is gone
    finally:
        connection.close()
