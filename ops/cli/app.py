"""Entry point: ``wanotify COMMAND``. Settings are read from the environment once, here."""

from __future__ import annotations

import logging

import click

from wanotify.ops.cli import (
    admin,
    api_keys,
    broadcast,
    dead,
    optouts,
    publish,
    relay,
    run,
    schemas,
    senders,
    sending,
    status,
    template_sync,
    users,
    webhooks,
)
from wanotify.ops.cli.errors import CliGroup
from wanotify.shared.config import Settings
from wanotify.shared.logs import setup_logging

# Processes that keep running and log their own connection attempts; the rest answer once.
LONG_RUNNING = {"run", "webhook", "fake-provider", "relay"}


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Debug logs, and the traceback behind an error (also LOG_LEVEL=debug).")
@click.version_option(package_name="wanotify")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """wanotify: event-driven WhatsApp notifications on RabbitMQ.

    Upstream apps publish events; the notifier renders and logs messages; the sender delivers
    them one at a time, at least SEND_GAP_SECONDS apart, urgent ones first, retrying failures
    later through dead-letter queues. Configuration comes from the environment (see README).
    """
    setup_logging(level=logging.DEBUG if debug else logging.INFO)  # before the settings: their errors log too
    settings = Settings.from_env()
    level = logging.DEBUG if debug else logging.getLevelName(settings.log_level.upper())
    setup_logging(json_lines=settings.log_json, level=level, one_shot=ctx.invoked_subcommand not in LONG_RUNNING)
    ctx.obj = settings


# template_sync after admin: it adds `sync` to admin's `templates` group.
for module in (admin, template_sync, optouts, publish, run, dead, sending, status, webhooks, users, api_keys, broadcast,
               schemas, senders, relay):
    module.register(main)
