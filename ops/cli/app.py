"""Entry point: ``wanotify COMMAND``. Settings are read from the environment once, here."""

from __future__ import annotations

import importlib
import logging

import click

from wanotify.ops.cli.errors import CliGroup
from wanotify.shared.config import Settings
from wanotify.shared.logs import setup_logging

# Where each command is defined, as module:attribute under wanotify.ops.cli. A command's module is
# imported when that command runs, or when --help lists them all: importing every module took
# longer than `wanotify status` needs for its own work.
COMMANDS = {
    "api-keys": "api_keys:api_keys",
    "broadcast": "broadcast:broadcast",
    "dead": "dead:dead",
    "demo": "run:demo",
    "fake-provider": "run:fake_provider",
    "migrate": "admin:migrate",
    "optouts": "optouts:optouts",
    "pause": "sending:pause_command",
    "publish": "publish:publish",
    "queue": "dead:queue",
    "relay": "relay:relay",
    "resume": "sending:resume_command",
    "retry-failed": "dead:retry_failed",
    "run": "run:run",
    "schemas": "schemas:schemas",
    "send-test": "publish:send_test",
    "senders": "senders:senders",
    "settings": "admin:settings",
    "status": "status:status",
    "templates": "admin:templates",
    "users": "users:users",
    "webhook": "run:webhook",
    "webhooks": "webhooks:webhooks",
}

# Processes that keep running and log their own connection attempts; the rest answer once.
LONG_RUNNING = {"run", "webhook", "fake-provider", "relay"}


class LazyGroup(CliGroup):
    """The top-level group: its commands come from COMMANDS, each module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(f"wanotify.ops.cli.{module}"), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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

