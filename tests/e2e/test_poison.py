"""One event or message that breaks processing (a bug, data the database refuses) is parked;
it neither crashes a consumer nor blocks the queue behind it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from sqlalchemy import text

from shared.topology import Topology
from tests.e2e.scenario import member
from tests.support.broker import queue_depth
from tests.support.db import dead_events, messages
from tests.support.processes import wait_until

POISON = "+628114040666"


@contextlib.contextmanager
def refuse(engine, when: str, operation: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """A trigger that makes the database refuse some rows (removed afterwards, whatever happens)."""
    with engine.begin() as conn:
        conn.execute(text(f"""
            CREATE OR REPLACE FUNCTION refuse_poison() RETURNS trigger AS $$
            BEGIN IF {when} THEN RAISE EXCEPTION 'refused by test trigger'; END IF; RETURN NEW; END $$
            LANGUAGE plpgsql;
            CREATE TRIGGER refuse_poison BEFORE {operation} ON whatsapp_logs
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();"""))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_poison ON whatsapp_logs; DROP FUNCTION IF EXISTS refuse_poison()"))


def test_an_event_the_database_refuses_is_parked_and_the_rest_of_its_batch_goes_through(
        stack, publisher, fake_provider, sessions, engine):
    with refuse(engine, f"NEW.recipient = '{POISON}'", "INSERT"):
        notifier = stack.start("notifier")
        stack.start("sender")
        for i in (665, 666, 667):
            publisher.publish("member.registered", member(i))
        wait_until(lambda: len(fake_provider.calls()) == 2 and dead_events(sessions), 20, "two sent and one parked")
    [parked] = dead_events(sessions)
    assert parked.reason == "internal_error" and "refused by test trigger" in parked.detail
    assert sorted(m.recipient for m in messages(sessions)) == ["+628114040665", "+628114040667"]
    assert notifier.popen.poll() is None


def test_a_message_that_keeps_failing_unexpectedly_is_parked_and_the_next_one_is_sent(
        stack, publisher, fake_provider, sessions, engine, settings):
    stack.start("notifier")
    sender = stack.start("sender")
    with refuse(engine, f"NEW.recipient = '{POISON}' AND NEW.status = 'pending'", "UPDATE"):
        publisher.publish("member.registered", member(666))
        publisher.publish("member.registered", member(667))
        wait_until(lambda: len(fake_provider.calls()) == 1, 30, "the message behind the poison one")
    assert fake_provider.calls()[0]["to"] == "628114040667"
    assert queue_depth(settings.amqp_url, Topology(settings.namespace).send_dead_queue) == 1
    assert sender.popen.poll() is None and "failed unexpectedly 3 times" in sender.log()
    poisoned = next(m for m in messages(sessions) if m.recipient == POISON)
    assert (poisoned.status, poisoned.error_code) == ("dead", "internal_error")


def test_a_success_the_database_refuses_to_record_in_full_is_recorded_plainly_and_not_sent_again(
        stack, publisher, fake_provider, sessions, engine):
    # Given a database that refuses to store the provider's message id for one recipient
    stack.start("notifier")
    sender = stack.start("sender")
    with refuse(engine, f"NEW.recipient = '{POISON}' AND NEW.status = 'sent' AND NEW.provider_message_id IS NOT NULL",
                "UPDATE"):
        publisher.publish("member.registered", member(666))
        # Then the success is recorded without it, and the call is made once
        wait_until(lambda: [m.status for m in messages(sessions)] == ["sent"], 30, "the message to be recorded sent")
    time.sleep(1.0)
    assert len(fake_provider.calls()) == 1 and "died mid-call" not in sender.log()
    [row] = messages(sessions)
    assert row.provider_message_id is None


def test_a_success_that_cannot_be_recorded_for_a_while_is_recorded_later_and_never_sent_again(
        stack, publisher, fake_provider, sessions, engine):
    # Given a database that refuses every record of a success for one recipient
    stack.start("notifier")
    sender = stack.start("sender")
    with refuse(engine, f"NEW.recipient = '{POISON}' AND NEW.status = 'sent'", "UPDATE"):
        publisher.publish("member.registered", member(666))
        fake_provider.wait_for_calls(1, timeout=20)
        time.sleep(3.0)
        # While it refuses: the message still looks in progress, and it is not called again
        assert [m.status for m in messages(sessions)] == ["pending"]
    # When the database accepts the record again, it is written; the call was made once
    wait_until(lambda: [m.status for m in messages(sessions)] == ["sent"], 30, "the message to be recorded sent")
    time.sleep(1.0)
    assert len(fake_provider.calls()) == 1 and "died mid-call" not in sender.log()
