"""The transactional outbox for upstream Python apps: written with the business data, relayed
with confirms, in order per aggregate, waiting out outages, one relay at a time."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from tests.support.processes import wait_until
from tests.support.upstream import EventTap, orders, place_order, unsent, upstream_database
from wanotify.producers import outbox


@pytest.fixture
def upstream(database_url: str) -> Iterator[Engine]:
    with upstream_database(database_url) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def tap(settings) -> Iterator[EventTap]:  # type: ignore[no-untyped-def]
    listening = EventTap(settings.amqp_url, settings.namespace)
    yield listening
    listening.close()


def relay_for(settings, upstream: Engine, **options: object) -> outbox.OutboxRelay:  # type: ignore[no-untyped-def]
    return outbox.OutboxRelay(upstream, settings.amqp_url, settings.namespace, **options)  # type: ignore[arg-type]


def test_an_event_is_published_only_if_its_business_transaction_commits(settings, upstream, tap):
    # Given one order committed with its event, and one whose transaction rolled back
    committed = place_order(upstream, "M-1", 100)
    with pytest.raises(RuntimeError), Session(upstream) as session, session.begin():
        session.execute(orders.insert().values(member="M-2", amount=5))
        outbox.add(session, "payment.link_created", {"member_id": "M-2"}, aggregate_id="M-2")
        raise RuntimeError("the app fails after writing")
    # When the relay runs once
    stats = relay_for(settings, upstream).run_once()
    # Then only the committed event reached the exchange, as a persistent envelope keyed by its event_id
    [event] = tap.wait_for(lambda got: len(got) >= 1, 10, "the committed event")
    assert stats.published == 1 and unsent(upstream) == 0
    assert event["message_id"] == committed and event["persistent"]
    assert event["routing_key"] == "payment.link_created"
    envelope = event["envelope"]
    assert envelope["event_id"] == committed and envelope["source"] == "shop"
    assert envelope["data"] == {"member_id": "M-1", "order_id": 1, "amount": 100}


def test_a_bad_event_fails_the_apps_transaction_instead_of_reaching_the_relay(upstream):
    with pytest.raises(ValidationError, match="event_type"), Session(upstream) as session, session.begin():
        session.execute(orders.insert().values(member="M-3", amount=5))
        outbox.add(session, "Payment Link", {"member_id": "M-3"}, aggregate_id="M-3")
    with upstream.connect() as connection:
        assert connection.execute(select(func.count()).select_from(orders)).scalar_one() == 0


def test_events_of_one_aggregate_are_published_in_the_order_they_were_written(settings, upstream, tap):
    # Given interleaved events of three members written while the relay runs, in small batches
    stop = threading.Event()
    relay = relay_for(settings, upstream, batch_size=7, poll_seconds=0.05)
    running = threading.Thread(target=relay.run, args=(stop,))
    running.start()
    written: dict[str, list[str]] = {"M-1": [], "M-2": [], "M-3": []}
    for i in range(60):
        member = f"M-{i % 3 + 1}"
        written[member].append(place_order(upstream, member, i))
    events = tap.wait_for(lambda got: len(got) >= 60, 20, "sixty events")
    stop.set()
    running.join(10)
    # Then each member's events arrive in the order they were written
    for member, event_ids in written.items():
        assert [e["message_id"] for e in events if e["envelope"]["data"]["member_id"] == member] == event_ids
    assert relay.stats.published == 60


def test_the_relay_waits_out_an_unreachable_broker_and_keeps_every_event(settings, upstream):
    place_order(upstream, "M-1", 1)
    stop = threading.Event()
    relay = outbox.OutboxRelay(upstream, "amqp://guest:guest@127.0.0.1:1/", settings.namespace, max_backoff_seconds=0.2)
    running = threading.Thread(target=relay.run, args=(stop,))
    running.start()
    wait_until(lambda: relay.stats.interruptions >= 3, 10, "three failed attempts")
    stop.set()
    running.join(10)
    assert unsent(upstream) == 1 and relay.stats.published == 0


def test_only_one_relay_publishes_an_outbox_at_a_time(settings, upstream, tap):
    place_order(upstream, "M-1", 1)
    stop = threading.Event()
    holder = relay_for(settings, upstream, poll_seconds=0.05)
    running = threading.Thread(target=holder.run, args=(stop,))
    running.start()
    tap.wait_for(lambda got: len(got) >= 1, 10, "the first event")
    with pytest.raises(outbox.OutboxBusy, match="another relay"):
        relay_for(settings, upstream).run_once()
    stop.set()
    running.join(10)
    # once the holder stopped, its lock is free again
    place_order(upstream, "M-1", 2)
    assert relay_for(settings, upstream).run_once().published == 1


def test_the_event_id_given_by_the_app_is_kept(settings, upstream, tap):
    chosen = str(uuid.uuid4())
    with Session(upstream) as session, session.begin():
        assert outbox.add(session, "member.registered", {"member_id": "M-9"}, aggregate_id=9, event_id=chosen) == chosen
    relay_for(settings, upstream).run_once()
    [event] = tap.wait_for(lambda got: len(got) >= 1, 10, "the event")
    assert event["message_id"] == chosen == event["envelope"]["event_id"]
