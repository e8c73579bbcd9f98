"""Holding and restarting sending by hand: ``pause`` and ``resume``."""

from __future__ import annotations

import click

from wanotify.ops.admin.audit import cli_actor
from wanotify.ops.admin.pausing import pause, resume
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from
from wanotify.shared.topology import DEFAULT_SENDER

SENDER_HELP = "The sender (`wanotify senders list`); 'default' is the environment's number."


@click.command("pause")
@click.option("--reason", default=None, help="Why, for whoever looks at `wanotify status` next.")
@click.option("--sender", default="default", show_default=True, help=SENDER_HELP)
@json_option
@click.pass_context
def pause_command(ctx: click.Context, reason: str | None, sender: str, as_json: bool) -> None:
    """Hold sending until `wanotify resume`, without stopping any process.

    The call in flight finishes; every other message waits where it is (nothing is lost or
    cancelled). Running senders notice within a second."""
    settings = settings_from(ctx)
    with db_session(settings) as session:
        held = pause(session, settings.namespace, cli_actor(), reason, sender)
    emit({"sender": sender, "paused": True, "reason": held.reason}, as_json,
         f"sending paused ({held.reason}); `wanotify resume` restarts it" if sender == DEFAULT_SENDER
         else f"sender {sender} paused ({held.reason}); `wanotify resume --sender {sender}` restarts it")


@click.command("resume")
@click.option("--sender", default="default", show_default=True, help=SENDER_HELP)
@json_option
@click.pass_context
def resume_command(ctx: click.Context, sender: str, as_json: bool) -> None:
    """Restart sending after `wanotify pause` (or before a quality pause ends). The next call
    still keeps the gap after the last one."""
    settings = settings_from(ctx)
    with db_session(settings) as session:
        lifted = resume(session, settings.namespace, cli_actor(), sender)
    emit({"sender": sender, "paused": False, "lifted": lifted.as_dict() if lifted else None}, as_json,
         f"sending resumed (lifted: {lifted.reason})" if lifted else "sending was not paused; nothing to resume")
