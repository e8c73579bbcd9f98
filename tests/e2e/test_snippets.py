"""The README's snippets for other languages, run as their users run them: PHP with Debian's
php-cli and php-amqplib, Node with amqplib from the npm registry (scripts/setup.sh installs
them), curl, and Python with pika. Each publisher's event becomes one provider call through
the real pipeline; the status consumer sees a message go queued, then sent.

The files under tests/snippets are the README's code (tests/unit/test_snippets_readme.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import select

from tests.support.processes import Proc, wait_until
from wanotify.shared.db.models import MessageLog

SNIPPETS = Path(__file__).resolve().parents[1] / "snippets"
# Every snippet sends to 08114040707: the provider sees it in E.164.
RECIPIENT = "+628114040707"
SETTLE = 0.6  # a few gaps: long enough for a second call to show up if there were one


def snippet(command: list[str | Path], env: dict[str, str], cwd: Path = SNIPPETS) -> str:
    """Run a snippet as its user would; its last line of output (an event id or the API's answer)."""
    program = str(command[0])
    if shutil.which(program) is None:
        pytest.fail(f"{program} is not installed: run scripts/setup.sh (it installs php-cli, php-amqplib and the "
                    "Node snippets' amqplib)")
    done = subprocess.run([str(part) for part in command], env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


def node_snippet(name: str, env: dict[str, str]) -> str:
    if not (SNIPPETS / "node" / "node_modules" / "amqplib").is_dir():
        pytest.fail("amqplib is missing: run scripts/setup.sh (npm ci in tests/snippets/node)")
    return snippet(["node", SNIPPETS / "node" / name], env)


def only_call(fake_provider: Any) -> dict[str, Any]:
    fake_provider.wait_for_calls(1, timeout=30)
    time.sleep(SETTLE)
    calls = fake_provider.calls()
    assert len(calls) == 1, calls
    assert calls[0]["to"].lstrip("+") == RECIPIENT.lstrip("+")
    return calls[0]


def one_sent_message(sessions: Any, event_id: str) -> MessageLog:
    with sessions() as session:
        rows = session.scalars(select(MessageLog).where(MessageLog.event_id == uuid.UUID(event_id))).all()
    assert [row.status for row in rows] == ["sent"], rows
    return rows[0]


def test_the_laravel_snippet_is_valid_php():
    # Laravel itself is not installed here: its snippet is checked for syntax, and the plain-PHP
    # equivalent (php/publish_http.php) runs below.
    assert snippet(["php", "-l", SNIPPETS / "php" / "laravel_http.php"], {"PATH": "/usr/bin:/bin"}).startswith(
        "No syntax errors")


@pytest.fixture
def pipeline(stack: Any) -> Any:
    stack.start("notifier")
    stack.start("sender")
    return stack


def test_the_php_amqp_snippet_publishes_an_event_that_becomes_one_provider_call(pipeline, fake_provider, sessions):
    event_id = snippet(["php", SNIPPETS / "php" / "publish_amqp.php"], pipeline.env())
    call = only_call(fake_provider)
    assert "150.000" in call["body"]  # payment.succeeded's template, with the amount
    assert one_sent_message(sessions, event_id).template == "payment_success"


def test_the_node_amqp_snippet_publishes_an_event_that_becomes_one_provider_call(pipeline, fake_provider, sessions):
    event_id = node_snippet("publish_amqp.mjs", pipeline.env())
    only_call(fake_provider)
    assert one_sent_message(sessions, event_id).template == "welcome_new_member"


def test_the_amqp_snippets_fail_loudly_when_no_queue_takes_the_event(stack):
    # No notifier has declared the namespace's queues: nothing would take the event.
    connection = pika.BlockingConnection(pika.URLParameters(stack.settings.amqp_url))
    try:
        connection.channel().exchange_declare(f"{stack.settings.namespace}.events", "topic", durable=True)
    finally:
        connection.close()
    for command in (["php", SNIPPETS / "php" / "publish_amqp.php"], ["node", SNIPPETS / "node" / "publish_amqp.mjs"]):
        done = subprocess.run([str(c) for c in command], env=stack.env(), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        assert done.returncode != 0 and "no queue takes" in done.stderr, done.stderr


class Background:
    """A program running beside the test, its output kept in a file the test reads."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="wanotify-snippet-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.popen.terminate()
        self.popen.wait(10)
        self._log.close()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def status_consumer(stack: Any) -> Iterator[Background]:
    """The README's Python status consumer, on a queue of the test's namespace (deleted with it)."""
    env = stack.env(STATUS_QUEUE=f"{stack.settings.namespace}.app-status")
    consumer = Background([sys.executable, str(SNIPPETS / "python" / "consume_status.py")], env)
    try:
        wait_until(lambda: queue_exists(stack.settings.amqp_url, env["STATUS_QUEUE"]), 20, "the consumer's queue")
        yield consumer
    finally:
        consumer.close()


def queue_exists(amqp_url: str, queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_the_python_status_consumer_sees_a_message_go_queued_then_sent(pipeline, status_consumer, publisher):
    event_id = str(publisher.publish("member.registered", {"member_id": "M-1", "name": "Budi", "phone": "08114040707"}))

    def statuses() -> list[str]:
        return [line.split()[3] for line in status_consumer.log().splitlines() if line.startswith(event_id)]

    wait_until(lambda: "sent" in statuses(), 30, f"the status events of {event_id}:\n{status_consumer.log()}")
    assert statuses()[:2] == ["queued", "sent"]
    message_id, template = status_consumer.log().split(event_id, 1)[1].split()[:2]
    assert int(message_id) > 0 and template == "welcome_new_member"


# The HTTP API (contract section 8): a key from `wanotify api-keys create`, `wanotify run web --only api`.

@pytest.fixture
def api(stack: Any) -> Iterator[dict[str, str]]:
    """The environment of an HTTP snippet: the API's URL and a fresh key."""
    key = json.loads(stack.cli("api-keys", "create", f"snippets-{uuid.uuid4().hex[:6]}", "--json"))["key"]
    web = Proc(["run", "web", "--only", "api", "--port", "0"], stack.env(), ready="web: serving", name="api")
    try:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", web.log())
        assert match, web.log()
        url = match[1]
        yield stack.env(WANOTIFY_URL=url, WANOTIFY_API_KEY=key)
    finally:
        web.close()


@pytest.mark.parametrize("command", [["php", "php/publish_http.php"], ["node", "node/publish_http.mjs"],
                                     ["sh", "curl/publish_event.sh"]], ids=["php", "node", "curl"])
def test_each_http_snippet_publishes_an_event_that_becomes_one_provider_call(pipeline, api, command, fake_provider,
                                                                             sessions):
    if command[0] == "node":
        output = node_snippet("publish_http.mjs", api)
    else:
        output = snippet([command[0], SNIPPETS / command[1]], api)
    event_id = json.loads(output)["event_id"] if output.startswith("{") else output
    only_call(fake_provider)
    one_sent_message(sessions, event_id)


def test_an_http_snippet_reports_a_refused_key(api):
    env = api | {"WANOTIFY_API_KEY": "not-a-key"}
    done = subprocess.run(["php", str(SNIPPETS / "php" / "publish_http.php")], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "wanotify refused the event: 401" in done.stderr
