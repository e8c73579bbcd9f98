"""The README's Python status consumer ("Status events"), run as its users run it, against the
real relay: it prints each change of a message."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pika
from prometheus_client import CollectorRegistry

from tests.support.processes import wait_until, wanotify_env
from tests.support.status_events import log_message
from wanotify.consumers.status import StatusRelay
from wanotify.shared.db.engine import make_engine
from wanotify.shared.metrics import Metrics
from wanotify.shared.topology import Topology, declare_topology

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python(section: str) -> str:
    """The first Python block of a README section."""
    text = README.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, f"no Python block in the README's {section!r}"
    return match.group(1)


def test_the_readme_status_consumer_prints_each_change_of_a_message(settings, sessions):
    declare_wanotify(settings)  # as any running wanotify process has
    script = Path(tempfile.mkstemp(suffix=".py")[1])
    script.write_text(readme_python("Status events"))
    queue = f"{settings.namespace}.readme-status"
    output = Path(tempfile.mkstemp(suffix=".log")[1])
    with output.open("wb") as sink:
        consumer = subprocess.Popen([sys.executable, str(script)], stdout=sink, stderr=subprocess.STDOUT,
                                    env=wanotify_env(settings, "http://127.0.0.1:9", STATUS_QUEUE=queue))
    try:
        # Given the consumer's queue bound (it declares it when it starts)
        wait_until(lambda: _queue_bound(queue), 20, "the consumer's queue")
        # When a message is queued, sent and fails for good, and the relay publishes the changes
        log_id = log_message(sessions, ["queued", "sent", "dead"], error="131026: undeliverable")
        engine = make_engine(settings.database_url, pre_ping=False)
        asyncio.run(StatusRelay(settings.amqp_url, settings.namespace, engine, Metrics(CollectorRegistry()))
                    .run_until_empty())
        engine.dispose()
        # Then the consumer printed each, in order, with the error where there is one
        lines = wait_until(lambda: _lines(output, 3), 20, f"three status lines:\n{output.read_text()}")
        assert [line.split()[1:4] for line in lines] == [[str(log_id), "welcome", s] for s in ("queued", "sent", "dead")]
        assert lines[2].endswith("131026: undeliverable")
    finally:
        consumer.terminate()
        consumer.wait(10)
        script.unlink()
        output.unlink()


def declare_wanotify(settings) -> None:  # type: ignore[no-untyped-def]
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        declare_topology(connection.channel(), Topology(settings.namespace))
    finally:
        connection.close()


def _lines(output: Path, n: int) -> list[str] | None:
    lines = [line for line in output.read_text().splitlines() if line.strip()]
    return lines if len(lines) >= n else None


def _queue_bound(queue: str) -> bool:
    import requests

    reply = requests.get(f"http://127.0.0.1:15672/api/queues/%2F/{requests.utils.quote(queue, safe='')}/bindings",
                         auth=("guest", "guest"), timeout=5)
    return reply.status_code == 200 and any(b["routing_key"] == "message.*" for b in reply.json())
