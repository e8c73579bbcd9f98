"""Starting a consumer while its services may be down: wait for what is unreachable, stop at
once for what only a person can fix.

A broker or database that does not answer (refused, reset, timed out, name not resolved yet,
shutting down) is waited for, with backoff and one log line per attempt naming the host and
the cause. Wrong credentials, a missing database or vhost, or a schema that was never migrated
raise ``ConfigError`` with the fix: retrying cannot help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiormq.exceptions
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from wanotify.shared.db.retry import Stopped
from wanotify.shared.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BACKOFF_SECONDS = 10.0

# PostgreSQL's words for problems that waiting will not fix.
_DATABASE_CONFIG_PROBLEMS = ("password authentication failed", "does not exist", "no password supplied",
                             "no pg_hba.conf entry", "permission denied")


def cause(exc: BaseException) -> str:
    """The first line of what went wrong, without the library's stack."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def broker_config_error(exc: BaseException, where: str) -> ConfigError | None:
    """A ``ConfigError`` if the broker refused us for a reason only a person can fix."""
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError | aiormq.exceptions.AuthenticationError):
        return ConfigError(f"RabbitMQ at {where} refused the user and password in AMQP_URL: fix AMQP_URL")
    if isinstance(exc, aiormq.exceptions.ConnectionNotAllowed):
        return ConfigError(f"RabbitMQ at {where} refused the connection ({cause(exc)}): check the vhost and the "
                           "user's permissions in AMQP_URL")
    return None


def database_config_error(exc: BaseException, where: str) -> ConfigError | None:
    if isinstance(exc, ArgumentError):
        return ConfigError(f"DATABASE_URL is not a database URL ({cause(exc)}): use "
                           "postgresql+psycopg2://USER:PASSWORD@HOST:5432/DATABASE")
    if isinstance(exc, OperationalError) and any(p in str(exc.orig) for p in _DATABASE_CONFIG_PROBLEMS):
        return ConfigError(f"PostgreSQL at {where} refused us ({cause(exc)}): fix DATABASE_URL, or create the "
                           "database and run `wanotify migrate`")
    return None


def is_unreachable(exc: BaseException) -> bool:
    """Errors that mean "not there right now": worth waiting for."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, OperationalError) or exc.connection_invalidated
    return isinstance(exc, ConnectionError | OSError | TimeoutError | aiormq.exceptions.AMQPError)


def check_database(database_url: str) -> None:
    """Connect once and check the schema is there; raises on any problem."""
    engine = create_engine(database_url, pool_pre_ping=False, hide_parameters=True)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("whatsapp_logs"):
                raise ConfigError(f"the database at {where_database(database_url)} has no wanotify tables: "
                                  "run `wanotify migrate` first")
    finally:
        engine.dispose()


def where_database(database_url: str) -> str:
    try:
        url = make_url(database_url)
    except ArgumentError:
        return "(unparseable DATABASE_URL)"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


async def until_available(start: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event,
                          classify: Callable[[BaseException], ConfigError | None]) -> T:
    """Run ``start`` until it succeeds; wait out unreachable services, raise configuration errors.

    Raises ``Stopped`` if ``stop`` is set while waiting.
    """
    delay = 0.5
    while True:
        try:
            return await start()
        except ConfigError:
            raise
        except Exception as exc:
            problem = classify(exc)
            if problem is not None:
                raise problem from exc
            if not is_unreachable(exc):
                raise
            log.warning("%s is not available (%s); retrying in %.1fs", what, cause(exc), delay)
        await sleep_unless_stopped(delay, stop)
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)


async def sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
    raise Stopped
