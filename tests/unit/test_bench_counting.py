"""The bench's own arithmetic: round trips counted per transaction, the pool's steady rate, backlog shares."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from bench.counted import RoundTrips
from bench.direct import split
from bench.scenarios.pool_scale import NUMBERS, _steady_rate
from wanotify.shared.priority import Priority


def test_round_trips_are_what_psycopg2_sends_grouped_by_transaction(database_url: str):
    counter = RoundTrips()
    counter.install()
    try:
        engine = create_engine(database_url)
        for _ in range(3):
            with engine.begin() as conn:  # BEGIN, two statements, COMMIT: four round trips
                conn.execute(text("SELECT 1"))
                conn.execute(text("SELECT 2"))
        with engine.connect() as conn:  # nothing sent: no transaction was opened
            conn.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # no BEGIN, no COMMIT
            conn.execute(text("SELECT 3"))
            conn.commit()
            # a transaction that begins and commits in its statements: one, of two round trips
            conn.exec_driver_sql("BEGIN; SELECT 4")
            conn.exec_driver_sql("SELECT 5; COMMIT")
        engine.dispose()
    finally:
        counter.uninstall()
    snapshot = counter.snapshot()
    assert snapshot["round_trips"] == 15
    assert snapshot["transactions"] == [{"first_statement": "SELECT 1", "count": 3, "round_trips": 12},
                                        {"first_statement": "SELECT 3", "count": 1, "round_trips": 1},
                                        {"first_statement": "BEGIN; SELECT 4", "count": 1, "round_trips": 2}]


def test_the_pool_rate_counts_only_the_window_in_which_every_number_sends():
    # Every number calls every 0.2 s from t=0 to t=10, except that the last one starts at t=2:
    # the window is 2..10, in which the pool makes 5 calls a second per number.
    by_number = {f"n{i:02d}": [round(k * 0.2, 1) for k in range(51)] for i in range(NUMBERS)}
    by_number["n49"] = [t for t in by_number["n49"] if t >= 2.0]
    rate, window = _steady_rate(by_number)
    assert window == 8.0
    assert rate == NUMBERS * 5


def test_the_pool_rate_is_each_numbers_pace_when_the_numbers_call_out_of_step():
    # Every number calls every 0.2 s for 11 s, each starting 4 ms after the one before: the
    # window starts and ends on a call of one number only, and the pool still makes 250 a second.
    by_number = {f"n{i:02d}": [i * 0.004 + k * 0.2 for k in range(56)] for i in range(NUMBERS)}
    rate, window = _steady_rate(by_number)
    assert window == 10.8
    assert rate == NUMBERS * 5


def test_backlog_shares_give_each_row_its_priority_in_order():
    priority_of = split([(Priority.HIGH, 2), (Priority.NORMAL, 3), (Priority.LOW, 1)])
    assert [priority_of(i) for i in range(6)] == [Priority.HIGH] * 2 + [Priority.NORMAL] * 3 + [Priority.LOW]
