"""Status events as an upstream app sees them: bound to ``{ns}.status``, one message's changes
arrive in order, and a process killed between a commit and its publish loses none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.e2e.scenario import member
from tests.support.db import messages
from tests.support.processes import wait_until
from tests.support.status_events import StatusListener, outbox_rows, statuses_by_message
from tests.support.web import Served, empty_webhook_tables, encode, post_signed, receipt, serve, webhook_settings
from wanotify.ops.web.limits import Limits
from wanotify.shared.db.engine import transaction


@pytest.fixture
def listener(settings) -> Iterator[StatusListener]:  # type: ignore[no-untyped-def]
    listening = StatusListener(settings.amqp_url, settings.namespace)
    yield listening
    listening.close()


@pytest.fixture
def webhook(settings, sessions) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    empty_webhook_tables(sessions)
    with serve(webhook_settings(settings), Limits()) as served:
        yield served


def deliver_receipt(served: Served, wamid: str, status: str, timestamp: str) -> None:
    status_code, reply = post_signed(served, encode(receipt(wamid, status, timestamp)))
    assert status_code == 200, reply


def test_a_consumer_sees_queued_sent_delivered_read_in_order(stack, publisher, sessions, listener, webhook):
    # Given the notifier and the sender running (each with its status relay; one is active)
    stack.start("notifier")
    stack.start("sender")
    # When an event becomes a message that is sent, then delivered and read by the recipient
    event_id = publisher.publish("member.registered", member(1))
    [sent] = wait_until(lambda: [m for m in messages(sessions) if m.status == "sent"], 20, "the message sent")
    assert sent.provider_message_id
    listener.wait_for(lambda got: [e.body["status"] for e in got] == ["queued", "sent"], 20, "queued and sent")
    deliver_receipt(webhook, sent.provider_message_id, "delivered", "1763800100")
    deliver_receipt(webhook, sent.provider_message_id, "read", "1763800200")
    events = listener.wait_for(lambda got: len(got) >= 4, 20, "delivered and read")
    # Then a consumer of {ns}.status saw each change once, in order, for that message and event
    assert statuses_by_message(events) == {sent.id: ["queued", "sent", "delivered", "read"]}
    assert [e.routing_key for e in events] == ["message.queued", "message.sent", "message.delivered", "message.read"]
    assert {e.body["event_id"] for e in events} == {event_id}
    assert all(e.body["template"] == sent.template and "4040001" not in str(e.body) for e in events)


def test_a_relay_killed_between_commit_and_publish_loses_no_status_event(stack, sessions, listener):
    # Given a process whose status relay is active
    relay = stack.start("notifier")
    relay.wait_for_log("status relay: active")
    # When a burst of status changes is committed and the process is killed while publishing them
    with transaction(sessions) as session:
        ids = list(session.execute(text(
            "INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status) "
            "SELECT gen_random_uuid(), 'member.registered', 'welcome', '+6281140400' || n, 'hi', 'normal', 'queued' "
            "FROM generate_series(1, 2000) AS n RETURNING id")).scalars())
    listener.wait_for(lambda got: len(got) >= 1, 20, "the first event of the burst")
    relay.kill()
    pending = outbox_rows(sessions, unpublished_only=True)
    assert pending > 0, "the relay finished before it was killed: nothing was left between commit and publish"
    # Then a restarted process publishes every change that was left
    stack.start("notifier").wait_for_log("status relay: active")
    wait_until(lambda: outbox_rows(sessions, unpublished_only=True) == 0, 30, "the rest published")
    events = listener.wait_for(lambda got: {e.body["message_id"] for e in got} >= set(ids), 30, "every message's event")
    assert statuses_by_message(events) == {i: ["queued"] for i in ids}
    print(f"status relay killed with {pending} of {len(ids)} events unpublished; received {len(events)} "
          f"({len(events) - len(ids)} repeats)")
