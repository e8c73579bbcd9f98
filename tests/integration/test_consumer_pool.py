"""A consumer process keeps one pooled connection per database thread: none is opened per use."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import event, text

from wanotify.consumers.runner import DATABASE_THREADS, database_threads
from wanotify.shared.db.engine import autocommit_twin


def test_every_database_thread_at_work_at_once_reuses_its_connections(database_url: str) -> None:
    executor, engine = database_threads(database_url)
    twin = autocommit_twin(engine)
    opened: Counter[str] = Counter()
    for name, counted in (("engine", engine), ("twin", twin)):
        event.listen(counted, "connect", lambda *_args, name=name: opened.update([name]))
    everyone = threading.Barrier(DATABASE_THREADS, timeout=30)

    def use_both(_task: int) -> None:
        with engine.connect() as one, twin.connect() as other:
            for connection in (one, other):
                connection.execute(text("SELECT 1"))
            everyone.wait()  # every thread holds its connections at the same moment

    def all_threads_at_once() -> None:
        list(executor.map(use_both, range(DATABASE_THREADS)))

    held = twin.connect()  # as the status relay holds the connection of its lock
    try:
        # Given every thread has used the database at the same time once
        all_threads_at_once()
        after_first = dict(opened)
        # When they all do it again
        all_threads_at_once()
        # Then no connection was opened for it: the pools kept them all
        assert dict(opened) == after_first
        assert after_first == {"engine": DATABASE_THREADS, "twin": DATABASE_THREADS + 1}
    finally:
        held.close()
        executor.shutdown()
        engine.dispose()  # and its autocommit twin with it
