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


async def record_durably(attempts: list[Callable[[], T]], what: str, *, max_wait: float = 10.0) -> T:
    """Write a record that must not be lost, such as the outcome of a call already made.

    ``attempts`` are ways to write it, fullest first: when one fails on anything but an outage
    (data the database refuses), the next, plainer one is tried; the last is retried with
    backoff until it succeeds. It never gives up, because giving up would leave the message
    looking unfinished and get it sent again.
    """
    delay = 0.2
    index = 0
    while True:
        try:
            return await run_db(attempts[index], max_wait=max_wait)
        except Exception as exc:  # noqa: BLE001 - any refusal: try the plainer record, then retry
            log.error("recording %s failed (%s: %s); %s", what, type(exc).__name__, str(exc).splitlines()[0] if str(exc)
                      else "", "trying a plainer record" if index + 1 < len(attempts) else f"retrying in {delay:.1f}s")
        if index + 1 < len(attempts):
            index += 1
            continue
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_wait)
