"""``wanotify relay`` as an operator runs it: --once --json, and a setup step not done."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from tests.support.processes import run_wanotify, wanotify_env
from tests.support.upstream import EventTap, place_order, unsent, upstream_database
from wanotify.producers.outbox import OutboxRelay


@pytest.fixture
def tap(settings) -> Iterator[EventTap]:  # type: ignore[no-untyped-def]
    listening = EventTap(settings.amqp_url, settings.namespace)
    yield listening
    listening.close()


def wanotify(settings, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return run_wanotify(args, wanotify_env(settings, "http://127.0.0.1:9"))


def test_relay_once_publishes_what_is_unsent_and_reports_it_as_json(settings, database_url, tap):
    with upstream_database(database_url) as url:
        engine = create_engine(url)
        committed = [place_order(engine, "M-1", amount) for amount in (1, 2, 3)]
        done = wanotify(settings, "relay", "--database-url", url, "--once", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["published"] == 3
        assert unsent(engine) == 0
        engine.dispose()
    events = tap.wait_for(lambda got: len(got) >= 3, 10, "three events")
    assert [e["message_id"] for e in events] == committed


def test_relay_once_beside_a_running_relay_says_so_in_one_line(settings, database_url, tap):
    with upstream_database(database_url) as url:
        engine = create_engine(url)
        place_order(engine, "M-1", 1)
        stop = threading.Event()
        running = threading.Thread(target=OutboxRelay(engine, settings.amqp_url, settings.namespace,
                                                      poll_seconds=0.05).run, args=(stop,))
        running.start()
        try:
            tap.wait_for(lambda got: len(got) >= 1, 10, "the running relay's first event")
            done = wanotify(settings, "relay", "--database-url", url, "--once")
        finally:
            stop.set()
            running.join(10)
            engine.dispose()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("Error: another relay is publishing this outbox now")


def test_relay_says_how_to_create_a_missing_outbox_table(settings, database_url):
    done = wanotify(settings, "relay", "--database-url", database_url, "--table", "no_such_outbox", "--once")
    assert done.returncode == 2
    assert "has no table no_such_outbox" in done.stderr and "include_in(metadata)" in done.stderr


def test_relay_refuses_a_database_url_that_is_not_one(settings):
    done = wanotify(settings, "relay", "--database-url", "not a url", "--once")
    assert done.returncode == 2 and "--database-url is not a database URL" in done.stderr


def test_relay_takes_a_plain_postgresql_url_and_names_what_failed_in_its_own_terms(settings, database_url):
    with upstream_database(database_url) as url:
        engine = create_engine(url)
        place_order(engine, "M-1", 1)
        engine.dispose()
        plain = "postgresql://" + url.split("://", 1)[1]  # SQLAlchemy alone would want psycopg 3 for it
        wrong_broker = wanotify(settings, "relay", "--database-url", plain, "--once",
                                "--amqp-url", "amqp://guest:guest@127.0.0.1:9/")
        assert wrong_broker.returncode == 1 and "Traceback" not in wrong_broker.stderr
        assert "127.0.0.1:9/" in wrong_broker.stderr.splitlines()[-1]  # the broker it used, not AMQP_URL's
        done = wanotify(settings, "relay", "--database-url", plain, "--once", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["published"] == 1
    missing = wanotify(settings, "relay", "--database-url", url, "--once")  # the database is gone now
    last = missing.stderr.splitlines()[-1]
    assert missing.returncode == 1 and "the app's database at" in last and "does not exist" in last
    assert "wanotify migrate" not in last  # that creates wanotify's own database, not the app's
    no_driver = wanotify(settings, "relay", "--database-url", "mysql://u:p@127.0.0.1/app", "--once")
    assert no_driver.returncode == 2 and "needs the Python driver MySQLdb" in no_driver.stderr
