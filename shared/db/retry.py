"""Waiting out a database outage instead of failing the message in hand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Stopped(Exception):
    """The process was asked to stop while it waited for the database."""


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database is unreachable", not "the query is wrong"."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


async def run_db(fn: Callable[[], T], stop: asyncio.Event | None = None, *, max_wait: float = 10.0) -> T:
    """Run ``fn`` in a worker thread; while the database is down, retry with backoff.

    Nothing is acked while this waits, so an outage delays work but never loses it. Raises
    ``Stopped`` if ``stop`` is set during an outage.
    """
    delay = 0.2
    while True:
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("database unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
        if stop is not None and stop.is_set():
            raise Stopped
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_wait)
