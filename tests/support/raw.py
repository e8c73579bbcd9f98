"""Publishing raw bytes as an upstream might, and reading dead-queue copies, in tests."""

from __future__ import annotations

import hashlib

import pika

from wanotify.shared.topology import Topology


def publish_raw(amqp_url: str, namespace: str, bodies: list[tuple[str, bytes]],
                properties: pika.BasicProperties | None = None) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    exchange = Topology(namespace).events_exchange
    for routing_key, body in bodies:
        channel.basic_publish(exchange, routing_key, body, properties or pika.BasicProperties(delivery_mode=2),
                              mandatory=True)
    connection.close()


def dead_copies(amqp_url: str, queue: str) -> list[tuple[dict, str, int]]:  # type: ignore[type-arg]
    """(headers, sha256 of the body, body size) of every copy on a dead queue, left in place."""
    return [(properties.headers, hashlib.sha256(body).hexdigest(), len(body)) for properties, body in _peek(amqp_url, queue)]


def dead_message_ids(amqp_url: str, queue: str) -> list[str | None]:
    """The AMQP message_id of every copy on a dead queue, left in place."""
    return [properties.message_id for properties, _body in _peek(amqp_url, queue)]


def _peek(amqp_url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Every copy on ``queue``, read without taking it off: unacked, so they stay parked."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    copies = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        copies.append((properties, body))
    connection.close()
    return copies
