"""``wanotify relay``: publish an upstream app's transactional outbox (``wanotify.producers.outbox``)."""

from __future__ import annotations

import signal
import threading

import click
from sqlalchemy import Engine, MetaData, Table, create_engine, inspect
from sqlalchemy.exc import ArgumentError, DBAPIError

from wanotify.ops.cli.common import emit, json_option, settings_from
from wanotify.ops.cli.errors import CliFailure, ConfigFailure, first_line
from wanotify.producers.outbox import TABLE_NAME, OutboxBusy, OutboxRelay, outbox
from wanotify.shared.startup import where_database
from wanotify.shared.urls import redact_url


@click.command()
@click.option("--database-url", required=True, metavar="URL",
              help="The upstream app's database, which holds the outbox table (a SQLAlchemy URL).")
@click.option("--amqp-url", default=None, metavar="URL", help="The broker (default: AMQP_URL).")
@click.option("--namespace", default=None, help="wanotify's namespace (default: WANOTIFY_NAMESPACE).")
@click.option("--table", default=TABLE_NAME, show_default=True, help="The outbox table's name.")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10_000),
              help="Events published, confirmed and marked sent together (at most this many are published again "
                   "after a crash).")
@click.option("--once", is_flag=True, help="Publish what is unsent now, then exit (for cron or a deploy step).")
@json_option
@click.pass_context
def relay(ctx: click.Context, database_url: str, amqp_url: str | None, namespace: str | None, table: str,
          batch_size: int, once: bool, as_json: bool) -> None:
    """Publish the events an app committed to its outbox table, with confirms, in order, at least once.

    Runs until SIGINT/SIGTERM, waiting out outages of the database and of the broker; with
    --once, publishes what is unsent and exits. On PostgreSQL only one relay per table is
    active; others wait on standby."""
    database_url = _with_driver(database_url)
    # A failure names the broker this command uses: the group's ``explain`` reads the root's settings.
    settings = settings_from(ctx).with_(amqp_url=amqp_url or settings_from(ctx).amqp_url)
    ctx.obj = ctx.find_root().obj = settings
    engine = _engine(database_url, table)
    relayer = OutboxRelay(engine, settings.amqp_url, namespace or settings.namespace,
                          table=_table(table), batch_size=batch_size)
    click.echo(f"outbox relay: {where_database(database_url)} table {table} -> "
               f"{redact_url(settings.amqp_url)} ({namespace or settings.namespace}.events)", err=True)
    try:
        stats = relayer.run_once() if once else relayer.run(_stop_on_signals())
    except OutboxBusy as exc:  # --once beside a running relay: let that one publish
        raise CliFailure(str(exc)) from None
    except DBAPIError as exc:  # the app's database, not wanotify's: DATABASE_URL's advice does not apply
        raise CliFailure(f"the app's database at {where_database(database_url)} (--database-url) failed: "
                         f"{first_line(exc)} — check --database-url and that the database exists") from None
    finally:
        engine.dispose()
    summary = stats.as_dict()
    emit(summary, as_json, f"published {summary['published']} events in {summary['batches']} batches "
                           f"({summary['interruptions']} interruptions)")


def _with_driver(database_url: str) -> str:
    """``postgres://`` and ``postgresql://`` with the PostgreSQL driver wanotify installs (psycopg2):
    SQLAlchemy would pick psycopg 3 for them, which is not installed."""
    scheme, sep, rest = database_url.partition("://")
    return f"postgresql+psycopg2://{rest}" if sep and scheme.lower() in ("postgres", "postgresql") else database_url


def _engine(database_url: str, table: str) -> Engine:
    try:
        engine = create_engine(database_url, pool_size=2, pool_pre_ping=True, hide_parameters=True)
    except ArgumentError as exc:
        raise ConfigFailure(f"--database-url is not a database URL ({exc}): use e.g. "
                            "postgresql://USER:PASSWORD@HOST:5432/DATABASE") from None
    except ImportError as exc:  # a dialect whose driver is not installed (mysql://, oracle://, …)
        raise ConfigFailure(f"--database-url needs the Python driver {exc.name or 'for its database'}, which is not "
                            "installed: install it beside wanotify, or name an installed one in the URL's scheme "
                            "(postgresql:// uses psycopg2)") from None
    _check_table(engine, table, database_url)
    return engine


def _check_table(engine: Engine, table: str, database_url: str) -> None:
    """A missing table is a setup step not done: say which, rather than retry forever."""
    try:
        with engine.connect() as connection:
            present = inspect(connection).has_table(table)
    except Exception:  # noqa: BLE001 - unreachable now: the relay waits for it
        return
    if not present:
        raise ConfigFailure(f"the database at {where_database(database_url)} has no table {table}: create it with the "
                            "app's schema (wanotify.producers.outbox.include_in(metadata), then create_all or a migration)")


def _table(name: str) -> Table:
    return outbox if name == TABLE_NAME else outbox.to_metadata(MetaData(), name=name)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        click.echo(f"outbox relay: {signal.Signals(signum).name} received, stopping after the batch in hand", err=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    return stop
