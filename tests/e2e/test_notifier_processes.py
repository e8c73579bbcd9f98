"""``wanotify run notifier --processes N``: N notifier processes share the events and stop together."""

from __future__ import annotations

import os
import re
import signal

import requests
from sqlalchemy import func, select

from tests.e2e.scenario import member
from tests.support.broker import MANAGEMENT
from tests.support.processes import Proc, wait_until
from wanotify.shared.db.models import MessageLog
from wanotify.shared.topology import Topology


def _consumers(queue: str) -> int:
    reply = requests.get(f"{MANAGEMENT}/queues/%2F/{requests.utils.quote(queue, safe='')}", auth=("guest", "guest"),
                         timeout=10)
    return int(reply.json().get("consumers") or 0) if reply.status_code == 200 else 0


def _children(proc: Proc) -> list[int]:
    found = re.search(r"notifier: 2 processes \(pids (\d+), (\d+)\)", proc.log())
    assert found, proc.log()
    return [int(found.group(1)), int(found.group(2))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start_two(stack) -> Proc:  # type: ignore[no-untyped-def]
    proc = Proc(["run", "notifier", "--processes", "2"], stack.env(), name="notifiers")
    stack.procs.append(proc)
    wait_until(lambda: proc.log().count("consuming") >= 2, 60, "both notifier processes consuming")
    return proc


def test_two_notifier_processes_share_the_events_and_stop_together(stack, publisher, sessions, settings):
    # Given `run notifier --processes 2`
    proc = _start_two(stack)
    children = _children(proc)
    # Then the notifier queue has two consumers
    wait_until(lambda: _consumers(Topology.of(settings).notifier_queue) == 2, 30, "two consumers on the notifier queue")
    # When events come, every one is logged once
    for i in range(20):
        publisher.publish("member.registered", member(i))

    def logged() -> int:
        with sessions() as session:
            return int(session.scalar(select(func.count()).select_from(MessageLog)) or 0)
    wait_until(lambda: logged() == 20, 60, "20 messages logged")
    # And SIGTERM to the command stops both processes cleanly
    assert proc.terminate(timeout=60) == 0
    assert not any(_alive(pid) for pid in children)


def test_when_one_process_dies_the_others_stop_and_the_command_fails(stack):
    # Given two notifier processes under one command
    proc = _start_two(stack)
    first, second = _children(proc)
    # When one is killed
    os.kill(first, signal.SIGKILL)
    # Then the command stops the other and exits non-zero, so a supervisor restarts the set
    assert proc.popen.wait(60) != 0
    assert not _alive(second)
    assert "stopped on its own" in proc.log()
