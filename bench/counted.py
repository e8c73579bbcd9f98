"""``python -m bench.counted --out FILE run ROLE``: the product's CLI, with its PostgreSQL round trips counted.

Every statement a SQLAlchemy engine sends is one round trip; so are the ``BEGIN`` psycopg2 sends
before a transaction's first statement and its ``COMMIT`` or ``ROLLBACK``, but only when they
really go to the server: an autocommit connection sends no ``BEGIN``, and a commit or rollback
with no transaction open sends nothing (psycopg2's transaction status tells). On an autocommit
connection a statement is a transaction of its own unless the statements themselves begin and
commit one (``shared.db.folded``): a transaction there ends with the statement after which the
connection is idle again. Listeners on the
``Engine`` class count them in the process under test (no product code changes) and group them
by transaction, named after the transaction's first statement (its first 70 characters), so the
bench can say both "round trips per call" and which transaction spends them. The counts are
written to FILE twice a second and at exit.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event
from sqlalchemy.engine import Engine


class RoundTrips:
    def __init__(self) -> None:
        self.total = 0
        self.transactions: Counter[str] = Counter()  # transaction kind -> how many
        self.trips_by_kind: Counter[str] = Counter()  # transaction kind -> round trips in them
        self._open: dict[int, tuple[str | None, int]] = {}  # connection id -> (kind, trips so far)
        self._lock = threading.Lock()

    def install(self) -> None:
        for name, listener in self._listeners():
            event.listen(Engine, name, listener)

    def uninstall(self) -> None:
        for name, listener in self._listeners():
            event.remove(Engine, name, listener)

    def _listeners(self) -> list[tuple[str, Any]]:
        return [("before_cursor_execute", self._statement), ("after_cursor_execute", self._after),
                ("commit", self._end), ("rollback", self._end)]

    def _statement(self, conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        dbapi = cursor.connection
        trips = 1 + (not dbapi.autocommit and dbapi.info.transaction_status == TRANSACTION_STATUS_IDLE)  # + BEGIN
        with self._lock:
            self.total += trips
            kind, so_far = self._open.get(id(conn), (None, 0))
            self._open[id(conn)] = (kind or " ".join(statement.split())[:70], so_far + trips)

    def _after(self, conn: Any, cursor: Any, *_args: Any) -> None:
        dbapi = cursor.connection
        if dbapi.autocommit and dbapi.info.transaction_status == TRANSACTION_STATUS_IDLE:  # no transaction left open
            with self._lock:
                kind, trips = self._open.pop(id(conn), (None, 0))  # None: counting began mid-statement
                if kind is not None:
                    self._close(kind, trips)

    def _end(self, conn: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        sent = int(dbapi is not None and dbapi.info.transaction_status != TRANSACTION_STATUS_IDLE)
        with self._lock:
            self.total += sent
            kind, so_far = self._open.pop(id(conn), (None, 0))
            if kind is not None or sent:
                self._close(kind or "(empty transaction)", so_far + sent)

    def _close(self, kind: str, trips: int) -> None:
        self.transactions[kind] += 1
        self.trips_by_kind[kind] += trips

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"round_trips": self.total,
                    "transactions": [{"first_statement": kind, "count": n, "round_trips": self.trips_by_kind[kind]}
                                     for kind, n in self.transactions.most_common(12)]}


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "--out":
        sys.exit("usage: python -m bench.counted --out FILE <wanotify arguments>")
    out = Path(sys.argv[2])
    counter = RoundTrips()
    counter.install()
    stop = threading.Event()

    def write() -> None:
        out.write_text(json.dumps(counter.snapshot()))

    def every_half_second() -> None:
        while not stop.wait(0.5):
            write()

    threading.Thread(target=every_half_second, daemon=True, name="bench-round-trips").start()
    atexit.register(write)
    from wanotify.ops.cli import main as cli

    sys.argv = ["wanotify", *sys.argv[3:]]
    try:
        cli()
    finally:
        stop.set()
        write()


if __name__ == "__main__":
    main()
