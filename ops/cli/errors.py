"""Failures a user can cause, as one line: ``Error: <what> — <how to fix>``.

Every command runs inside ``CliGroup.invoke``, which sorts what went wrong in one place: a
known failure (configuration, an unreachable or refusing broker or database, a schema that
was never migrated) becomes a ``CliFailure`` with exit code 2 for configuration and 1 for
the rest; the traceback goes to the debug log only (``--debug`` or ``LOG_LEVEL=debug``).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable

import aiormq.exceptions
import click
import pika.exceptions
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError

from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError, WanotifyError
from wanotify.shared.urls import redact_url

log = logging.getLogger("wanotify.cli")

# PostgreSQL's SQLSTATEs for a table or column the schema should have.
UNDEFINED_TABLE_OR_COLUMN = ("42P01", "42703")
_BROKER_UNREACHABLE = (pika.exceptions.AMQPConnectionError, aiormq.exceptions.AMQPConnectionError, socket.gaierror)
_BROKER_REFUSED_LOGIN = (pika.exceptions.ProbableAuthenticationError, aiormq.exceptions.ProbableAuthenticationError,
                         aiormq.exceptions.AuthenticationError)
_BROKER_REFUSED_VHOST = (pika.exceptions.ProbableAccessDeniedError, aiormq.exceptions.ConnectionNotAllowed)


class CliFailure(click.ClickException):
    """A failure the user can fix: click prints ``Error: <message>`` and exits with 1."""


class ConfigFailure(CliFailure):
    """The configuration is wrong: exit code 2, like a usage error."""

    exit_code = 2


class CliGroup(click.Group):
    """The ``wanotify`` group: every sub-command's known failures become one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            failure = explain(exc, ctx.obj if isinstance(ctx.obj, Settings) else None)
            if failure is None:
                raise
            log.debug("what led to the error below:", exc_info=exc)
            raise failure from None


def explain(exc: BaseException, settings: Settings | None) -> CliFailure | None:
    """The one-line explanation of ``exc``, or None for an unexpected error (a bug)."""
    broker = redact_url(settings.amqp_url) if settings else "AMQP_URL"
    database = redact_url(settings.database_url) if settings else "DATABASE_URL"
    if isinstance(exc, WanotifyError) and not isinstance(exc, ConfigError) and exc.__cause__ is not None:
        cause = explain(exc.__cause__, settings)  # e.g. a PublishError wrapping a refused connection
        if cause is not None:
            return cause
    for kinds, describe in _EXPLAINERS:
        failure = describe(exc, broker, database) if isinstance(exc, kinds) else None
        if failure is not None:
            return failure
    return None


def first_line(exc: BaseException) -> str:
    """The innermost cause's first line: ``Connection refused`` rather than pika's nested reprs."""
    inner: BaseException = getattr(exc, "orig", None) or exc
    # pika nests its causes in args, and in ``exception`` for its connection workflow errors.
    nested = [a for a in (*inner.args, getattr(inner, "exception", None)) if isinstance(a, BaseException)]
    if nested:
        return first_line(nested[-1])
    text = inner.strerror if isinstance(inner, OSError) and inner.strerror else str(inner)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__


def _config(exc: BaseException, _broker: str, _database: str) -> CliFailure:
    return ConfigFailure(str(exc))


def _known(exc: BaseException, _broker: str, _database: str) -> CliFailure:
    return CliFailure(str(exc))


def _broker_login(exc: BaseException, broker: str, _database: str) -> CliFailure:
    return ConfigFailure(f"RabbitMQ at {broker} refused the user name or password — fix them in AMQP_URL")


def _broker_vhost(exc: BaseException, broker: str, _database: str) -> CliFailure:
    return ConfigFailure(f"RabbitMQ at {broker} refused access ({first_line(exc)}) — check the virtual host and "
                         "the user's permissions in AMQP_URL")


def _broker_down(exc: BaseException, broker: str, _database: str) -> CliFailure:
    return CliFailure(f"cannot connect to RabbitMQ at {broker} ({first_line(exc)}) — check AMQP_URL and that "
                      "RabbitMQ is running")


def _broker_refused(exc: BaseException, broker: str, _database: str) -> CliFailure:
    return CliFailure(f"RabbitMQ at {broker} refused an operation ({first_line(exc)}) — check AMQP_URL, its "
                      "virtual host and the user's permissions")


def _port_in_use(exc: BaseException, _broker: str, _database: str) -> CliFailure | None:
    if not (isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE):
        return None  # any other OSError is not known to be the user's
    return ConfigFailure(f"cannot listen: {exc.strerror} — choose a free port (METRICS_PORT, or the command's "
                         "--port) or stop the process that holds it")


def _bad_database_url(exc: BaseException, _broker: str, database: str) -> CliFailure:
    return ConfigFailure(f"DATABASE_URL {database} is not usable ({first_line(exc)}) — use "
                         "postgresql://USER:PASSWORD@HOST:5432/DATABASE")


def _database_refused(exc: BaseException, _broker: str, database: str) -> CliFailure:
    reason = first_line(exc)
    if "does not exist" in reason and "database" in reason:
        return CliFailure(f"the database in DATABASE_URL {database} does not exist ({reason}) — run "
                          "`wanotify migrate`, which creates it")
    if "password" in reason or "authentication" in reason or "pg_hba.conf" in reason or "role" in reason:
        return ConfigFailure(f"PostgreSQL at {database} refused the login ({reason}) — fix the user and "
                             "password in DATABASE_URL")
    return CliFailure(f"cannot connect to PostgreSQL at {database} ({reason}) — check DATABASE_URL and that "
                      "PostgreSQL is running")


def _database_error(exc: BaseException, _broker: str, database: str) -> CliFailure:
    if isinstance(exc, ProgrammingError) and getattr(exc.orig, "pgcode", None) in UNDEFINED_TABLE_OR_COLUMN:
        return CliFailure(f"the database at {database} has no wanotify schema, or an old one "
                          f"({first_line(exc)}) — run `wanotify migrate` first")
    return CliFailure(f"the database at {database} refused a statement ({first_line(exc)}) — check that "
                      "`wanotify migrate` ran and the user in DATABASE_URL may write")


# Most specific first: the refused-login classes are also connection errors.
_EXPLAINERS: list[tuple[type[BaseException] | tuple[type[BaseException], ...],
                        Callable[[BaseException, str, str], CliFailure | None]]] = [
    (ConfigError, _config),
    (WanotifyError, _known),
    (_BROKER_REFUSED_LOGIN, _broker_login),
    (_BROKER_REFUSED_VHOST, _broker_vhost),
    (_BROKER_UNREACHABLE, _broker_down),
    (ArgumentError, _bad_database_url),
    (OperationalError, _database_refused),
    (DBAPIError, _database_error),
    ((pika.exceptions.AMQPError, aiormq.exceptions.AMQPError), _broker_refused),
    (OSError, _port_in_use),
]
