"""``python -m bench.counted --out FILE run ROLE``: the product's CLI, with its PostgreSQL round trips counted.

Every statement a SQLAlchemy engine sends is one round trip; so are the ``BEGIN`` psycopg2 sends
before a transaction's first statement and its ``COMMIT`` or ``ROLLBACK``. Listeners on the
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
        event.listen(Engine, "begin", self._begin)
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "commit", self._end)
        event.listen(Engine, "rollback", self._end)

    def _begin(self, conn: Any) -> None:
        with self._lock:
            self._open[id(conn)] = (None, 1)  # psycopg2 sends BEGIN with the first statement, in a round trip of its own
            self.total += 1

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        with self._lock:
            self.total += 1
            kind, trips = self._open.get(id(conn), (None, 0))
            self._open[id(conn)] = (kind or " ".join(statement.split())[:70], trips + 1)

    def _end(self, conn: Any) -> None:
        with self._lock:
            self.total += 1
            kind, trips = self._open.pop(id(conn), (None, 0))
            kind = kind or "(empty transaction)"
            self.transactions[kind] += 1
            self.trips_by_kind[kind] += trips + 1

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
