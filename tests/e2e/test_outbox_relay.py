"""The outbox relay as an app runs it (``wanotify relay``), through what goes wrong in production:
the app's database cutting or restarting, and the relay killed in the middle of a batch.
Every committed business row's event must reach the exchange; repeats are bounded and carry
the same event_id (wanotify makes one message per event_id)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from tests.support.private_postgres import private_postgres
from tests.support.processes import Proc, wait_until, wanotify_env
from tests.support.upstream import EventTap, place_orders, terminate, unsent, upstream_database, with_application_name

BATCH = 50


@pytest.fixture
def tap(settings) -> Iterator[EventTap]:  # type: ignore[no-untyped-def]
    listening = EventTap(settings.amqp_url, settings.namespace)
    yield listening
    listening.close()


class OrderWriter(threading.Thread):
    """The app: orders committed one transaction each, with their events; the ids of those committed."""

    def __init__(self, engine: Engine, count: int, prefix: str, per_transaction: int = 5) -> None:
        super().__init__(daemon=True)
        self.engine, self.count, self.prefix, self.per_transaction = engine, count, prefix, per_transaction
        self.committed: list[str] = []

    def run(self) -> None:
        for start in range(0, self.count, self.per_transaction):
            placed = [(f"{self.prefix}{i % 7}", i) for i in range(start, min(start + self.per_transaction, self.count))]
            self.committed += place_orders(self.engine, placed)


def start_relay(settings, database_url: str, name: str) -> Proc:  # type: ignore[no-untyped-def]
    return Proc(["relay", "--database-url", database_url, "--batch-size", str(BATCH)],
                wanotify_env(settings, "http://127.0.0.1:9"), ready="outbox relay: active", name=name)


def wait_received(tap: EventTap, n: int, timeout: float = 60) -> None:
    tap.wait_for(lambda got: len(got) >= n, timeout, f"{n} events")


def kill_mid_batch(relay: Proc, engine: Engine) -> int:
    """SIGKILL the relay while events are still unsent; how many were unsent just after."""
    relay.popen.kill()
    relay.popen.wait(10)
    return unsent(engine)


def check_all_arrived(tap: EventTap, committed: list[str], interruptions: int) -> dict[str, int]:
    tap.wait_for(lambda got: set(committed) <= {e["message_id"] for e in got}, 60, "every committed event")
    ids = Counter(e["message_id"] for e in tap.received)
    duplicates = sum(n - 1 for n in ids.values())
    # Then none is lost, nothing unknown was published, and a repeat is the same event
    assert set(ids) == set(committed)
    for event_id in (i for i, n in ids.items() if n > 1):
        copies = [e["envelope"] for e in tap.received if e["message_id"] == event_id]
        assert all(c == copies[0] and c["event_id"] == event_id for c in copies)
    # and repeats are bounded: at most one batch per interruption
    assert duplicates <= BATCH * interruptions
    return {"committed": len(committed), "published": len(tap.received), "duplicates": duplicates}


def test_every_committed_event_arrives_through_connection_cuts_and_a_relay_killed_mid_batch(settings, database_url, tap):
    with upstream_database(database_url) as url:
        name = f"outbox-relay-{uuid.uuid4().hex[:6]}"
        engine = create_engine(url)
        relay = start_relay(settings, with_application_name(url, name), "relay")
        try:
            # Given the app committing orders while the relay publishes them
            writer = OrderWriter(engine, 1500, "M-")  # five orders a transaction
            writer.start()
            # When the app's database cuts the relay's connections, twice
            wait_received(tap, 200)
            cuts = terminate(engine, name)
            wait_received(tap, 500)
            cuts += terminate(engine, name)
            # and the relay is killed while it publishes a batch, then started again
            wait_received(tap, 800)
            left = kill_mid_batch(relay, engine)
            first_log = relay.log()
            relay.close()
            relay = start_relay(settings, with_application_name(url, name), "relay-again")
            writer.join(120)
            counts = check_all_arrived(tap, writer.committed, interruptions=3)
            print(f"outbox relay, connections cut ({cuts}) and killed with {left} unsent: {counts}")
            assert cuts >= 2 and "retrying" in first_log
        finally:
            relay.close()
            engine.dispose()


def test_every_committed_event_arrives_when_the_apps_database_server_restarts(settings, tap):
    with private_postgres() as server, upstream_database(server.url) as url:
        engine = create_engine(url, pool_pre_ping=True)
        relay = start_relay(settings, url, "relay")
        try:
            # Given a backlog of committed orders that the relay is working through
            first = OrderWriter(engine, 800, "A-", per_transaction=400)
            first.run()
            wait_received(tap, 1)
            # When the app's database server restarts under the relay
            server.stop()
            server.start()
            wait_until(lambda: "retrying" in relay.log(), 30, "the relay to notice the restart")
            # and, with more orders waiting, the relay is killed mid-batch and started again
            before = len(tap.received)
            second = OrderWriter(engine, 800, "B-", per_transaction=400)
            second.run()
            wait_received(tap, before + 1)
            left = kill_mid_batch(relay, engine)
            relay.close()
            relay = start_relay(settings, url, "relay-again")
            counts = check_all_arrived(tap, first.committed + second.committed, interruptions=2)
            print(f"outbox relay, database server restarted and relay killed with {left} unsent: {counts}")
        finally:
            relay.close()
            engine.dispose()
