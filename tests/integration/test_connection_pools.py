"""A process keeps one pooled connection per database thread: none is opened per use."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from sqlalchemy import Engine, event, text

from wanotify.consumers.runner import database_threads
from wanotify.shared.db.engine import DATABASE_THREADS, autocommit_twin, make_engine


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


def test_an_engine_of_the_default_size_keeps_a_connection_for_each_thread_of_the_default_executor(
        database_url: str) -> None:
    # As the web server's parts do: their database work runs in asyncio.to_thread.
    engine = make_engine(database_url)
    opened: list[object] = []
    event.listen(engine, "connect", lambda *_args: opened.append(None))
    everyone = threading.Barrier(DATABASE_THREADS, timeout=30)

    def use(connections: Engine) -> None:
        with connections.connect() as connection:
            connection.execute(text("SELECT 1"))
            everyone.wait()

    async def all_threads_at_once() -> None:
        await asyncio.gather(*(asyncio.to_thread(use, engine) for _ in range(DATABASE_THREADS)))

    try:
        # Given every thread of a loop's default executor used the database at the same time once
        asyncio.run(all_threads_at_once())
        # When they all do it again
        asyncio.run(all_threads_at_once())
        # Then the pool kept a connection for each of them: none was opened for the second time
        assert len(opened) == DATABASE_THREADS
    finally:
        engine.dispose()
