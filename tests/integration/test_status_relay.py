"""The status relay against the real database and broker: what it publishes, in which order,
that one relay publishes at a time, and that it waits out outages without losing an event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.support.broker import broker_connection, close_connection
from tests.support.processes import wait_until
from tests.support.status_events import StatusListener, first_of_each, log_message, outbox_rows, statuses_by_message
from wanotify.consumers.status import RelayOptions, StatusRelay
from wanotify.consumers.status import relay as relay_module
from wanotify.shared.db.engine import make_engine
from wanotify.shared.metrics import Metrics

FAST = RelayOptions(idle_poll_seconds=0.05, standby_poll_seconds=0.2, gauges_every_seconds=0.1, max_backoff_seconds=0.5)


@pytest.fixture
def listener(settings) -> Iterator[StatusListener]:  # type: ignore[no-untyped-def]
    listening = StatusListener(settings.amqp_url, settings.namespace)
    yield listening
    listening.close()


def relay_for(settings, options: RelayOptions = FAST, name: str = "status-relay-test",  # type: ignore[no-untyped-def]
              amqp_url: str | None = None) -> tuple[StatusRelay, Metrics]:
    url = make_url(settings.database_url).update_query_dict({"application_name": name})
    engine = make_engine(url.render_as_string(hide_password=False), pre_ping=False)
    metrics = Metrics(CollectorRegistry())
    return StatusRelay(amqp_url or settings.amqp_url, settings.namespace, engine, metrics, options), metrics


def test_each_status_change_becomes_one_event_in_order_without_a_phone_number(settings, sessions, listener):
    # Given a message that went queued -> pending -> sent -> delivered -> read, and one that died
    log_id = log_message(sessions, ["queued", "pending", "sent", "delivered", "read"])
    dead_id = log_message(sessions, ["queued", "pending", "failed", "dead"],
                          error="131026: Recipient +628114040707 is not a valid WhatsApp user")
    # When the relay runs
    relay, metrics = relay_for(settings)
    assert asyncio.run(relay.run_until_empty()) == 7
    events = listener.wait_for(lambda got: len(got) >= 7, 10, "seven status events")
    # Then each change (but the internal pending) is one event, in order per message
    assert statuses_by_message(events) == {log_id: ["queued", "sent", "delivered", "read"],
                                           dead_id: ["queued", "failed", "dead"]}
    assert [e.routing_key for e in events if e.body["message_id"] == log_id] == [
        "message.queued", "message.sent", "message.delivered", "message.read"]
    # with the contract's fields, an error only where one applies, and never the phone number
    read = events[3].body
    assert set(read) == {"message_id", "event_id", "template", "sender", "status", "at"}
    assert read["template"] == "welcome" and read["at"].endswith("Z")
    assert events[-1].body["error"] == "131026: Recipient 6281******07 is not a valid WhatsApp user"
    assert all("8114040707" not in str(e.body) for e in events)
    # persistent JSON, one AMQP message_id per change (for consumers to dedupe on)
    assert all(e.persistent and e.content_type == "application/json" for e in events)
    assert len({e.amqp_message_id for e in events}) == 7
    assert outbox_rows(sessions, unpublished_only=True) == 0
    assert metrics.registry.get_sample_value("wanotify_status_events_published_total", {"status": "queued"}) == 2


def test_a_message_the_sender_takes_back_to_the_queue_publishes_no_second_queued(settings, sessions, listener):
    # Given a message deferred once after its claim, then sent; and one replayed after it died
    deferred = log_message(sessions, ["queued", "pending", "queued", "pending", "sent"])
    replayed = log_message(sessions, ["queued", "pending", "dead", "queued", "pending", "sent"])
    relay, _ = relay_for(settings)
    assert asyncio.run(relay.run_until_empty()) == 6
    events = listener.wait_for(lambda got: len(got) >= 6, 10, "six status events")
    # Then the take-back is no change to upstream apps, and a replay still is one
    assert statuses_by_message(events) == {deferred: ["queued", "sent"], replayed: ["queued", "dead", "queued", "sent"]}


def test_events_nobody_listens_to_yet_are_not_sent_back_by_the_broker(settings, sessions):  # type: ignore[no-untyped-def]
    # Given changes to relay, and no queue bound to the status exchange
    for _ in range(3):
        log_message(sessions, ["queued", "sent"])
    relay, metrics = relay_for(settings)
    returned: list[object] = []

    async def scenario() -> int:
        exchange = await relay._ensure_exchange()
        exchange.channel.return_callbacks.add(lambda _channel, message: returned.append(message))
        published = await relay.run_until_empty()
        await asyncio.sleep(0.2)  # a return would have come before its publish's confirm anyway
        return published

    # When the relay publishes them
    assert asyncio.run(scenario()) == 6
    # Then each is published once and confirmed, and none comes back as unroutable
    assert returned == []
    assert outbox_rows(sessions, unpublished_only=True) == 0
    assert metrics.registry.get_sample_value("wanotify_status_events_published_total", {"status": "sent"}) == 3


def test_a_relay_waits_out_an_unreachable_broker_and_reports_its_backlog(settings, sessions, listener):
    # Given committed changes and a relay whose broker does not answer
    for _ in range(3):
        log_message(sessions, ["queued", "sent"])
    time.sleep(0.3)
    stuck, metrics = relay_for(settings, amqp_url="amqp://guest:guest@127.0.0.1:1/")

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(stuck.run(stop))
        # Then it holds the lock, keeps every row and says how far behind it is (within a few
        # seconds, however loaded the machine)
        for _ in range(100):
            if (metrics.registry.get_sample_value("wanotify_status_relay_active") == 1
                    and metrics.registry.get_sample_value("wanotify_status_outbox_backlog") == 6):
                break
            await asyncio.sleep(0.1)
        assert metrics.registry.get_sample_value("wanotify_status_relay_active") == 1
        assert metrics.registry.get_sample_value("wanotify_status_outbox_backlog") == 6
        assert metrics.registry.get_sample_value("wanotify_status_relay_lag_seconds") >= 0.3  # type: ignore[operator]
        stop.set()
        await running

    asyncio.run(scenario())
    assert outbox_rows(sessions, unpublished_only=True) == 6
    # and once stopped, its lock is free: another relay publishes everything
    relay, _ = relay_for(settings)
    assert asyncio.run(relay.run_until_empty()) == 6
    assert len(listener.wait_for(lambda got: len(got) >= 6, 10, "six status events")) == 6


def test_one_relay_publishes_at_a_time_and_a_standby_takes_over_a_holder_cut_off_from_the_database(
        settings, sessions, engine, listener):
    first, first_metrics = relay_for(settings, name="status-relay-a")
    second, second_metrics = relay_for(settings, name="status-relay-b")

    def active() -> list[float | None]:
        return [m.registry.get_sample_value("wanotify_status_relay_active") for m in (first_metrics, second_metrics)]

    async def scenario() -> list[int]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(first.run(stop)), asyncio.create_task(second.run(stop))]
        await asyncio.sleep(0.5)
        # Given two relays on one database: exactly one is active
        assert sorted(active()) == [0, 1], active()
        holder = "status-relay-a" if active()[0] == 1 else "status-relay-b"
        ids = await asyncio.to_thread(lambda: [log_message(sessions, ["queued", "sent", "delivered"]) for _ in range(20)])
        # When PostgreSQL cuts the holder's connections while it works
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                         {"n": holder})
        ids += await asyncio.to_thread(lambda: [log_message(sessions, ["queued", "sent", "read"]) for _ in range(20)])
        await asyncio.to_thread(wait_until, lambda: outbox_rows(sessions, unpublished_only=True) == 0, 20,
                                "every change published")
        assert sorted(active()) == [0, 1], active()  # still exactly one
        stop.set()
        await asyncio.gather(*tasks)
        return ids

    ids = asyncio.run(scenario())
    events = listener.wait_for(lambda got: len(first_of_each(got)) >= 120, 20, "120 status events")
    # Then nothing is lost and each message's changes arrive in order
    by_message = statuses_by_message(events)
    assert by_message == {i: (["queued", "sent", "delivered"] if n < 20 else ["queued", "sent", "read"])
                          for n, i in enumerate(ids)}
    print(f"events received: {len(events)}, distinct: {len(first_of_each(events))}")


def test_published_events_are_pruned_after_the_retention(settings, sessions, listener):
    log_message(sessions, ["queued", "sent"])
    relay, _ = relay_for(settings, RelayOptions(idle_poll_seconds=0.05, retention_seconds=0.3, prune_every_seconds=0.1))

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        await asyncio.to_thread(wait_until, lambda: outbox_rows(sessions, unpublished_only=True) == 0, 10, "published")
        assert outbox_rows(sessions) == 2  # kept for now
        await asyncio.to_thread(wait_until, lambda: outbox_rows(sessions) == 0, 10, "pruned")
        stop.set()
        await running

    asyncio.run(scenario())
    assert len(listener.wait_for(lambda got: len(got) >= 2, 10, "two events")) == 2


def test_a_relay_whose_broker_connection_is_closed_reconnects_and_loses_nothing(settings, sessions, listener,
                                                                                monkeypatch):
    # Every wanotify process's relay has the same connection name, and tests running beside
    # this one start such processes: this relay gets a name of its own, so the test closes
    # its connection and not one that another test's process is about to close itself.
    own_name = f"{relay_module.CONNECTION_NAME}-{settings.namespace}"
    monkeypatch.setattr(relay_module, "CONNECTION_NAME", own_name)
    relay, _ = relay_for(settings)

    async def scenario() -> list[int]:
        stop = asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        first = await asyncio.to_thread(log_message, sessions, ["queued", "sent"])
        await asyncio.to_thread(wait_until, lambda: outbox_rows(sessions, unpublished_only=True) == 0, 10, "published")
        # When the broker closes the relay's connection (as a broker restart would)
        close_connection(await asyncio.to_thread(broker_connection, own_name))
        later = await asyncio.to_thread(lambda: [log_message(sessions, ["queued", "sent"]) for _ in range(5)])
        await asyncio.to_thread(wait_until, lambda: outbox_rows(sessions, unpublished_only=True) == 0, 20,
                                "the later changes published")
        stop.set()
        await running
        return [first, *later]

    ids = asyncio.run(scenario())
    # Then every change arrived, in order per message
    events = listener.wait_for(lambda got: len(first_of_each(got)) >= 12, 20, "twelve events")
    assert statuses_by_message(events) == {i: ["queued", "sent"] for i in ids}


def test_the_relay_s_reads_and_marks_are_one_round_trip_each(settings, sessions):
    from bench.counted import RoundTrips
    from wanotify.consumers.status.store import StatusOutboxStore

    engine = make_engine(settings.database_url, pre_ping=False)
    store = StatusOutboxStore(engine)
    log_message(sessions, ["queued"])
    trips = RoundTrips()
    try:
        assert store.try_acquire()
        trips.install()
        try:
            rows = store.pending(10)
            store.mark_published([row.id for row in rows])
        finally:
            trips.uninstall()
        assert rows and trips.total == 2, trips.snapshot()  # no BEGIN or COMMIT around either
    finally:
        store.release()
        engine.dispose()


def test_a_relay_that_caught_up_waits_before_reading_again_and_reads_a_backlog_on(settings, sessions):
    # Given five changes waiting, and a relay that reads two at a time and pauses 0.4 s when caught up
    for statuses in (["queued", "sent"], ["queued", "sent"], ["queued"]):
        log_message(sessions, statuses)
    relay, _ = relay_for(settings, RelayOptions(batch_size=2, idle_poll_seconds=0.4, gauges_every_seconds=60))
    reads: list[tuple[float, int]] = []  # (when, rows) of each read of the outbox
    pending = relay._store.pending

    def counted(limit: int):  # type: ignore[no-untyped-def]
        rows = pending(limit)
        reads.append((time.monotonic(), len(rows)))
        return rows

    relay._store.pending = counted  # type: ignore[method-assign]

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        await asyncio.to_thread(wait_until, lambda: len(reads) >= 4, 10, "four reads of the outbox")
        stop.set()
        await running

    asyncio.run(scenario())
    # Then the backlog is read on in full batches, and after the last, partial one the relay
    # waited its pause instead of reading an empty outbox at once
    assert [rows for _, rows in reads[:4]] == [2, 2, 1, 0]
    assert reads[3][0] - reads[2][0] >= 0.39
