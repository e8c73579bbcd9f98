"""Failures a user can cause print one line, ``Error: <what> — <how to fix>``, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiormq.exceptions
import click
import pika.exceptions
import pytest
from click.testing import CliRunner
from pika.adapters.utils.connection_workflow import AMQPConnectorSocketConnectError
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from wanotify.ops.cli.app import main
from wanotify.ops.cli.errors import CliGroup
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError

SETTINGS = Settings.from_env({"AMQP_URL": "amqp://app:s3cret@rabbit:5999/",
                              "DATABASE_URL": "postgresql://app:s3cret@db:5432/app"})


class UndefinedTable(Exception):
    pgcode = "42P01"


def refused_by_pika() -> Exception:
    return pika.exceptions.AMQPConnectionError(AMQPConnectorSocketConnectError(ConnectionRefusedError(111, "Connection refused")))


def run_raising(exc: BaseException, *args: str) -> tuple[int, str]:
    @click.group(cls=CliGroup)
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = SETTINGS

    @cli.command()
    def boom() -> None:
        raise exc

    result = CliRunner().invoke(cli, [*args, "boom"])
    return result.exit_code, result.output


@pytest.mark.parametrize(("exc", "code", "says"), [
    (ConfigError("SEND_GAP_SECONDS must be between 0 and 86400, got 'inf'"), 2, "SEND_GAP_SECONDS must be"),
    (refused_by_pika(), 1, "cannot connect to RabbitMQ at amqp://app:***@rabbit:5999/ (Connection refused) — check "
                           "AMQP_URL and that RabbitMQ is running"),
    (aiormq.exceptions.AMQPConnectionError(111, "Connect call failed ('127.0.0.1', 5999)"), 1,
     "cannot connect to RabbitMQ at amqp://app:***@rabbit:5999/ (Connect call failed"),
    (aiormq.exceptions.ProbableAuthenticationError("ACCESS_REFUSED"), 2, "refused the user name or password"),
    (pika.exceptions.ProbableAuthenticationError("ACCESS_REFUSED"), 2, "refused the user name or password"),
    (pika.exceptions.ProbableAccessDeniedError("vhost x not found"), 2, "check the virtual host"),
    (OperationalError("SELECT 1", {}, Exception("connection refused\n\tIs the server running?")), 1,
     "cannot connect to PostgreSQL at postgresql+psycopg2://app:***@db:5432/app (connection refused) — check "
     "DATABASE_URL"),
    (OperationalError("SELECT 1", {}, Exception('FATAL:  database "app" does not exist')), 1,
     "run `wanotify migrate`, which creates it"),
    (OperationalError("SELECT 1", {}, Exception("password authentication failed for user")), 2,
     "refused the login"),
    (OperationalError("SELECT 1", {}, Exception('FATAL:  role "app" does not exist')), 2, "refused the login"),
    (ProgrammingError("SELECT * FROM settings", {}, UndefinedTable('relation "settings" does not exist')), 1,
     "has no wanotify schema, or an old one (relation \"settings\" does not exist) — run `wanotify migrate` first"),
    (ArgumentError("Could not parse SQLAlchemy URL"), 2, "is not usable (Could not parse SQLAlchemy URL)"),
    (OSError(98, "Address already in use"), 2, "cannot listen: Address already in use — choose a free port"),
])
def test_a_known_failure_becomes_one_line_with_its_exit_code(exc, code, says):
    exit_code, output = run_raising(exc)
    assert exit_code == code
    assert output.startswith("Error: ") and output.count("\n") == 1 and says in output
    assert "Traceback" not in output and "s3cret" not in output


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), OSError(2, "No such file or directory")])
def test_an_unexpected_error_keeps_its_traceback(bug):
    exit_code, output = run_raising(bug)
    assert exit_code == 1 and "Error:" not in output  # not turned into a message: CliRunner caught it raw


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The entry point sets up logging for the process; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize(("name", "value", "says"), [
    ("DATABASE_URL", "nonsense", "DATABASE_URL must be a PostgreSQL URL"),
    ("AMQP_URL", "http://x", "AMQP_URL must be amqp://"),
    ("SEND_GAP_SECONDS", "inf", "SEND_GAP_SECONDS must be between 0 and 86400"),
])
def test_a_bad_environment_is_one_line_from_the_real_entry_point(name, value, says):
    result = CliRunner().invoke(main, ["status"], env={name: value})
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {says}") and result.output.count("\n") == 1, result.output


@pytest.mark.parametrize("args", [["dead", "list"], ["dead", "replay", "--all"], ["dead", "purge", "--all", "--yes"]])
def test_a_dead_letter_reason_no_item_gets_is_a_usage_error_listing_the_known_ones(args):
    done = CliRunner().invoke(main, [*args, "--reason", "bogus"], env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert done.exit_code == 2, done.output
    assert "Invalid value for '--reason': 'bogus' is not a reason" in done.output
    assert "invalid_phone" in done.output and "receipt_failed" in done.output
