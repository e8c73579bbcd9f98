"""One event or message that breaks processing (a bug, data the database refuses) is parked;
it neither crashes a consumer nor blocks the queue behind it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

from sqlalchemy import delete, text

from tests.e2e.scenario import member
from tests.support.broker import queue_depth
from tests.support.db import dead_events, messages
from tests.support.processes import wait_until
from wanotify.shared.db.models import Template
from wanotify.shared.topology import Topology

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


# Template bombs (notifier side): refused when saved, and harmless when already stored.
BOMBS = {
    "bomb_center": '{{ "x"|center(50000000) }}',
    "bomb_tuple": "{{ (1,)*50000000 }}",
    "bomb_loops": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
}


@contextlib.contextmanager
def stored_templates(sessions, templates: dict[str, str]) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Templates written straight into the database, as if saved before the checks existed."""
    with sessions() as session, session.begin():
        session.add_all(Template(key=key, body=body, language="id", active=True) for key, body in templates.items())
    try:
        yield
    finally:
        with sessions() as session, session.begin():
            session.execute(delete(Template).where(Template.key.in_(list(templates))))


def test_templates_set_refuses_each_template_bomb_with_its_reason_and_saves_nothing(stack, sessions):
    for key, body in BOMBS.items():
        done = subprocess.run([sys.executable, "-m", "wanotify.ops.cli", "templates", "set", key, "--body", body],
                              env=stack.env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        print(f"{key}: exit {done.returncode}: {done.stderr.strip()}")
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert "cannot render" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        with sessions() as session:
            assert session.get(Template, key) is None


def test_an_event_using_a_stored_template_bomb_is_parked_and_later_events_still_flow(
        stack, publisher, sessions, fake_provider):
    with stored_templates(sessions, BOMBS):
        notifier = stack.start("notifier")
        stack.start("sender")
        for key in BOMBS:
            started = time.monotonic()
            event_id = publisher.publish("notification.requested", {"phone": "08114040707", "template": key})
            [parked] = wait_until(lambda: [d for d in dead_events(sessions) if d.event_id == event_id],  # noqa: B023
                                  30, f"the event using {key} to be parked")
            print(f"{key}: published -> parked in {time.monotonic() - started:.3f} s: {parked.detail}")
            assert parked.reason == "template_error"
        publisher.publish("member.registered", member(5))
        fake_provider.wait_for_calls(1, timeout=20)
    assert notifier.popen.poll() is None and messages(sessions)[0].recipient == "+628114040005"


def test_a_template_renders_with_no_database_transaction_open(stack, publisher, sessions, engine):
    # Given a template that renders until the time limit stops it (the largest character of a
    # 60,000-character text, 10,000 times: it makes almost nothing, so only the time limit stops it)
    slow = ('{% set s = "x" * 4000 %}{% set s = s~s~s~s~s~s~s~s~s~s~s~s~s~s~s %}'
            '{% for i in range(10000) %}{% if s|max > "" %}{% endif %}{% endfor %}done')
    with stored_templates(sessions, {"slow_render": slow}):
        stack.start("notifier")
        event_id = publisher.publish("notification.requested", {"phone": "08114040707", "template": "slow_render"})
        # When it renders, the oldest transaction open in the database is watched
        oldest, deadline = 0.0, time.monotonic() + 60
        while not [d for d in dead_events(sessions) if d.event_id == event_id]:
            assert time.monotonic() < deadline, "the slow template was never parked"
            with engine.connect() as conn:
                oldest = max(oldest, conn.execute(text(
                    "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one())
            time.sleep(0.02)
    [parked] = dead_events(sessions)
    print(f"oldest transaction seen while rendering: {oldest * 1000:.0f} ms; {parked.detail}")
    # Then it was parked by the time limit, and no transaction stayed open while it rendered
    assert parked.reason == "template_error" and "longer than 1 s" in parked.detail
    assert oldest < 0.5
