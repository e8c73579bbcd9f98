"""Fifty numbers in one sender process: one connection, a lease and a consumer per queue each, and
a message to every number is sent from that number."""

from __future__ import annotations

import re
import time
from typing import Any

import requests

from tests.support.broker import MANAGEMENT
from tests.support.pool import add_numbers, calls_by_number, label, number_of, numbers_cleanup, pinned
from tests.support.processes import wait_until
from wanotify.shared.topology import Topology

__all__ = ["numbers_cleanup"]  # the fixture, used by name

NUMBERS = [f"n{i:02d}" for i in range(50)]


def _broker(path: str) -> list[dict[str, Any]]:
    reply = requests.get(f"{MANAGEMENT}/{path}", auth=("guest", "guest"), timeout=10)
    reply.raise_for_status()
    listed: list[dict[str, Any]] = reply.json()
    return listed


def _consumed_once(namespace: str, expected: set[str]) -> bool:
    """Whether each of ``expected`` exists with exactly one consumer (the management API lags a few seconds)."""
    found = {q["name"]: q.get("consumers") for q in _broker(f"queues/%2F?name=^{namespace}\\.send\\.n&use_regex=true")}
    return expected <= set(found) and all(found[name] == 1 for name in expected)


def _connections_named(name: str) -> int:
    return sum(1 for c in _broker("connections") if (c.get("client_properties") or {}).get("connection_name") == name)


def test_one_process_serves_fifty_numbers_on_one_connection(stack, publisher, fake_provider, sessions, settings,
                                                             numbers_cleanup):
    # Given fifty numbers, each with a 1 s gap, and one sender process
    env = add_numbers(sessions, fake_provider.url, NUMBERS, 1.0)
    stack.start("notifier")
    sender = stack.start("sender", **env)
    wait_until(lambda: sender.log().count("holding its lease") == 50, 60, "a lease on each of the fifty numbers")
    # Then every number's three queues have one consumer, all on the process's one connection
    expected = {name for n in NUMBERS for name in Topology.of(settings).send_queues(n)}
    wait_until(lambda: _consumed_once(settings.namespace, expected), 30, "one consumer on each of the 150 queues")
    found = re.search(r"sender ([0-9a-f]{8}) consuming", sender.log())
    assert found, sender.log()
    assert wait_until(lambda: _connections_named(f"wanotify-sender-{found.group(1)}"), 15, "its connection") == 1
    # When a message comes for every number
    started = time.time()
    for i, number in enumerate(NUMBERS):
        publisher.publish("notification.requested", pinned(i, number))
    # (a call the provider answers too late is tried again: wait for a call from every number)
    calls = wait_until(lambda: _from_every_number(fake_provider.calls()), 60, "a call from each of the fifty numbers")
    # Then each number sent its own
    print(f"50 messages on 50 numbers: the last call {calls[-1]['t'] - started:.2f} s after the first publish")
    assert all(number_of(call) == NUMBERS[int(label(call).removeprefix("normal-"))] for call in calls), [
        (number_of(call), label(call)) for call in calls]
    # and went once, unless a call failed and was tried again
    assert len(calls) - len(NUMBERS) <= len(re.findall(r"call for \S+ failed", sender.log())), sender.log()


def _from_every_number(calls: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return calls if set(calls_by_number(calls)) == set(NUMBERS) else None
