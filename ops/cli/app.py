"""Entry point: ``wanotify COMMAND``. Settings are read from the environment once, here."""

from __future__ import annotations

import click

from ops.cli import admin, dead, publish, run, status, webhooks
from ops.cli.common import fail_on_config_error
from shared.config import Settings
from shared.logs import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="wanotify")
@click.pass_context
def main(ctx: click.Context) -> None:
    """wanotify: event-driven WhatsApp notifications on RabbitMQ.

    Upstream apps publish events; the notifier renders and logs messages; the sender delivers
    them one at a time, at least SEND_GAP_SECONDS apart, urgent ones first, retrying failures
    later through dead-letter queues. Configuration comes from the environment (see README).
    """
    settings = fail_on_config_error(Settings.from_env)
    setup_logging(json_lines=settings.log_json)
    ctx.obj = settings


for module in (admin, publish, run, dead, status, webhooks):
    module.register(main)
