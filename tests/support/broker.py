"""Looking at queues in tests."""

from __future__ import annotations

import contextlib

import pika

from wanotify.shared.topology import Topology, delete_topology


def queue_depth(amqp_url: str, queue: str, *, may_be_missing: bool = False) -> int:
    """Messages ready in ``queue``; with ``may_be_missing``, 0 for a queue nobody has declared yet."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        if may_be_missing and exc.reply_code == 404:
            return 0
        raise
    finally:
        connection.close()


MANAGEMENT = "http://127.0.0.1:15672/api"


def broker_connection(client_name: str, timeout: float = 15.0) -> str:
    """The broker's name for the connection a process named ``client_name`` (management API;
    it lists a new connection after a few seconds)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = requests.get(f"{MANAGEMENT}/connections", auth=("guest", "guest"), timeout=5).json()
        for connection in listed:
            if (connection.get("client_properties") or {}).get("connection_name") == client_name:
                return str(connection["name"])
        time.sleep(0.2)
    raise AssertionError(f"no broker connection named {client_name!r}")


def close_connection(name: str) -> None:
    """Force-close a broker connection, as a network failure would."""
    import requests

    reply = requests.delete(f"{MANAGEMENT}/connections/{requests.utils.quote(name, safe='')}",
                            auth=("guest", "guest"), timeout=5, headers={"X-Reason": "closed by a test"})
    reply.raise_for_status()


def delete_namespace(amqp_url: str, namespace: str) -> None:
    """Remove a test namespace's exchange and queues (retry queues found via the management API)."""
    with contextlib.suppress(Exception):
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            delete_topology(connection.channel(), Topology(namespace), _retry_queues(namespace))
        finally:
            connection.close()


def _retry_queues(namespace: str) -> list[str]:
    import requests

    with contextlib.suppress(Exception):
        reply = requests.get("http://127.0.0.1:15672/api/queues/%2F", auth=("guest", "guest"), timeout=2,
                             params={"name": f"^{namespace}\\.", "use_regex": "true"})
        # every queue of the namespace: retry and deferral queues, other senders' send queues
        return [q["name"] for q in reply.json() if q["name"].startswith(f"{namespace}.")]
    return []
