"""Starting consumers as an operator would, including at the wrong moment or with a wrong
setting: an unreachable service is waited for; what only a person can fix stops the process
at once with one line that says how."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from tests.e2e.scenario import member
from tests.support.db import messages
from tests.support.outages import postgres_down, rabbitmq_down
from tests.support.processes import Proc, wait_until
from wanotify.shared.db.engine import create_database_if_missing, drop_database

# These stop or restart the machine's RabbitMQ or PostgreSQL: never run beside other tests.
pytestmark = pytest.mark.outage


def _start(stack, role: str, **env: object) -> Proc:  # type: ignore[no-untyped-def]
    proc = Proc(["run", role], stack.env(**env), name=role)
    stack.procs.append(proc)
    return proc


def _exits(proc: Proc, timeout: float = 30) -> str:
    code = proc.popen.wait(timeout)
    assert code != 0
    return proc.log()


def test_a_sender_started_while_rabbitmq_is_down_waits_for_it_and_then_sends(stack, publisher, fake_provider, sessions):
    with rabbitmq_down():
        sender = _start(stack, "sender")
        sender.wait_for_log("is not available")
        time.sleep(2)
        assert sender.popen.poll() is None
    sender.wait_for_log("consuming", timeout=60)
    stack.start("notifier")
    publisher.publish("member.registered", member(1))
    wait_until(lambda: [m.status for m in messages(sessions)] == ["sent"], 30, "the message to be sent")


def test_a_notifier_started_while_postgresql_is_down_waits_for_it_and_then_works(
        stack, publisher, fake_provider, sessions):
    with postgres_down():
        notifier = _start(stack, "notifier")
        notifier.wait_for_log("PostgreSQL at")
        assert "is not available" in notifier.log()
        time.sleep(2)
        assert notifier.popen.poll() is None
    notifier.wait_for_log("consuming", timeout=60)
    stack.start("sender")
    publisher.publish("member.registered", member(2))
    wait_until(lambda: [m.status for m in messages(sessions)] == ["sent"], 30, "the message to be sent")


def test_a_database_that_does_not_exist_stops_the_process_with_the_fix(stack, database_url):
    missing = make_url(database_url).set(database="wanotify_no_such_db").render_as_string(hide_password=False)
    log = _exits(_start(stack, "notifier", DATABASE_URL=missing))
    assert "does not exist" in log and "DATABASE_URL" in log and "Traceback" not in log


def test_an_unmigrated_database_stops_the_process_and_says_to_migrate(stack, database_url):
    empty = make_url(database_url).set(database=f"{make_url(database_url).database}_empty")
    url = empty.render_as_string(hide_password=False)
    create_database_if_missing(url)
    try:
        log = _exits(_start(stack, "sender", DATABASE_URL=url))
    finally:
        drop_database(url)
    assert "wanotify migrate" in log and "Traceback" not in log


def test_wrong_broker_credentials_stop_the_process_with_the_fix(stack):
    log = _exits(_start(stack, "notifier", AMQP_URL="amqp://nobody:wrong@127.0.0.1:5672/"))
    assert "AMQP_URL" in log and "wrong" not in log and "Traceback" not in log
