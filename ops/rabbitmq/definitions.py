"""Generate ``ops/rabbitmq/definitions.json`` from ``wanotify.shared.topology.Topology``.

RabbitMQ imports a definitions file at boot (``load_definitions`` in ``rabbitmq.conf``), so a
fresh broker starts with what ``declare_topology`` declares in every process: the events,
status and return exchanges, the fixed queues with the ``default`` sender's three send queues
(with their arguments), the notifier's binding and the return exchange's bindings to
``default``'s queues. Every name and argument comes from ``Topology``: nothing is typed here,
so the file and the code cannot drift apart (unit tests compare the document with what
``declare_topology`` declares, and the committed files with a fresh generation).

Not in the file, because they depend on the running system: a named sender's send queues and
their return bindings (a lane declares them when it starts, from the sender rows in the
database), the retry queues of other delays than ``DEFAULT_RETRY_DELAYS`` and the deferral
queues (each declared when first needed).

A node that imports definitions at boot does not create its default ``guest`` user, so the
document also carries one user for the demo deployment (``wanotify``/``wanotify``,
administrator on ``/``). Change it before exposing the broker anywhere.

``definitions-quorum.json`` is the same for ``QUEUE_TYPE=quorum`` (a cluster of three nodes:
every queue a quorum queue, at-least-once dead-lettering, a delivery limit on the send queues).

Run ``python -m wanotify.ops.rabbitmq.definitions`` to rewrite both files, or
``python -m wanotify.ops.rabbitmq.definitions [--queue-type classic|quorum] OUTPUT`` for one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wanotify.shared.topology import DEFAULT_SENDER, QUEUE_TYPES, QueueArgs, QueueSpec, Topology

VHOST = "/"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (300.0,)
DEFAULT_OUTPUT = Path(__file__).with_name("definitions.json")
QUORUM_OUTPUT = Path(__file__).with_name("definitions-quorum.json")

DEMO_USER = "wanotify"
DEMO_PASSWORD = "wanotify"  # demo credential, also in docker-compose.yml (AMQP_URL)
# A fixed salt keeps the generated file stable, so "committed == regenerated" can be tested.
DEMO_SALT = b"wano"


def password_hash(password: str, salt: bytes = DEMO_SALT) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), 4-byte salt."""
    if len(salt) != 4:
        raise ValueError("RabbitMQ password salts are 4 bytes")
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def _queue(spec: QueueSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "vhost": VHOST,
        "durable": True,
        "auto_delete": False,
        "arguments": dict(spec.arguments),
    }


def _exchange(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "vhost": VHOST, "type": kind, "durable": True, "auto_delete": False, "internal": False,
            "arguments": {}}


def _binding(exchange: str, queue: str, key: str, arguments: QueueArgs) -> dict[str, Any]:
    return {"source": exchange, "vhost": VHOST, "destination": queue, "destination_type": "queue",
            "routing_key": key, "arguments": dict(arguments)}


def build_definitions(namespace: str = "wanotify", retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
                      queue_type: str = "classic") -> dict[str, Any]:
    """The definitions document for one namespace, with one retry queue per delay in ``retry_delays``."""
    topology = Topology(namespace, queue_type)
    specs = list(topology.queues())
    seen = {spec.name for spec in specs}
    for delay in retry_delays:
        spec = topology.retry_queue_spec(delay)
        if spec.name not in seen:  # two delays that round to the same millisecond share a queue
            seen.add(spec.name)
            specs.append(spec)
    return {
        "vhosts": [{"name": VHOST}],
        "users": [{
            "name": DEMO_USER,
            "password_hash": password_hash(DEMO_PASSWORD),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ["administrator"],
        }],
        "permissions": [{"user": DEMO_USER, "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}],
        "exchanges": [_exchange(name, kind) for name, kind in topology.exchanges()],
        "queues": [_queue(spec) for spec in specs],
        "bindings": [_binding(exchange, queue, key, {}) for exchange, queue, key in topology.bindings()] + [
            # delayed copies return to default's queues by their header (named senders' at run time)
            _binding(topology.return_exchange, queue, "", arguments)
            for queue, arguments in topology.return_bindings(DEFAULT_SENDER)],
    }


def render(definitions: dict) -> str:  # type: ignore[type-arg]
    """The file's exact text (stable key order, trailing newline)."""
    return json.dumps(definitions, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the default namespace's definitions to ``OUTPUT`` for one queue type (classic unless
    ``--queue-type``), or both files next to this module when no OUTPUT is given."""
    parser = argparse.ArgumentParser(prog="python -m wanotify.ops.rabbitmq.definitions")
    parser.add_argument("--queue-type", choices=QUEUE_TYPES, default="classic")
    parser.add_argument("output", nargs="?", type=Path)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    targets = {args.output: args.queue_type} if args.output else {DEFAULT_OUTPUT: "classic", QUORUM_OUTPUT: "quorum"}
    for output, queue_type in targets.items():
        output.write_text(render(build_definitions(queue_type=queue_type)), encoding="utf-8")
        print(f"wrote {output} ({queue_type} queues)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
