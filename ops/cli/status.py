"""``wanotify status``: queues, sender, backlog, statuses, next messages."""

from __future__ import annotations

import time

import click

from wanotify.ops.admin.status import collect, render
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from
from wanotify.shared.monitoring import QueueProbe


@click.command()
@click.option("--watch", "watch", type=click.FloatRange(min=0.5), default=None, metavar="SECONDS",
              help="Refresh every SECONDS until Ctrl-C.")
@json_option
@click.pass_context
def status(ctx: click.Context, watch: float | None, as_json: bool) -> None:
    """Queue depths and consumers, sender state, backlog and drain estimate, counts by status,
    and the next messages to go out."""
    settings = settings_from(ctx)
    probe = QueueProbe(settings.amqp_url)
    try:
        while True:
            with db_session(settings) as session:  # failures reach the user through ops.cli.errors
                snapshot = collect(settings, session, probe)
            if watch and not as_json:
                click.clear()
            # Watching with --json prints one object per line, so a script can read it line by line.
            emit(snapshot, as_json, render, compact=bool(watch))
            if not watch:
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        pass
    finally:
        probe.close()
