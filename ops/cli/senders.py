"""The WhatsApp numbers wanotify sends from: ``senders list|show|add|set|pause|resume|disable|drain``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from wanotify.ops.admin import pausing
from wanotify.ops.admin.audit import cli_actor
from wanotify.ops.admin.dead_letters import parse_age
from wanotify.ops.admin.sender_drain import SenderDrain
from wanotify.ops.admin.senders import (
    SenderOptions,
    add_sender,
    disable_sender,
    list_senders,
    parse_warmup,
    set_sender,
    show_sender,
)
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table
from wanotify.shared.senders import PROVIDER_KINDS

F = Callable[..., Any]
LIST_COLUMNS = ["name", "provider", "state", "gap_seconds", "daily_limit_today", "waiting", "recipients", "pause_until"]


@click.group()
def senders() -> None:
    """The WhatsApp numbers messages go out from. Each has its own queues, gap and daily limit;
    a recipient sticks to one number. With no senders added, the environment's number is `default`."""


def sender_options(command: F) -> F:
    """The options `add` and `set` share (contract section 7)."""
    options = [
        click.option("--provider", type=click.Choice(PROVIDER_KINDS), help="meta (Cloud API), gateway (API key) or fake."),
        click.option("--phone-number-id", metavar="ID", help="meta: the number's Cloud API id."),
        click.option("--token-env", metavar="VAR", help="meta: the NAME of the environment variable holding the token."),
        click.option("--api-key-env", metavar="VAR", help="gateway: the NAME of the environment variable holding the key."),
        click.option("--sender-number", metavar="N", help="gateway: the number, international form (628114040707)."),
        click.option("--base-url", metavar="URL", help="The provider's base URL (default WHATSAPP_API_BASE_URL)."),
        click.option("--gap", type=float, metavar="S", help="Seconds between two calls (default SEND_GAP_SECONDS)."),
        click.option("--gap-min", type=float, metavar="S", help="A random gap from --gap-min ..."),
        click.option("--gap-max", type=float, metavar="S", help="... to --gap-max seconds (gateways ask for 30-60)."),
        click.option("--daily-limit", type=int, metavar="N", help="Unique recipients per rolling 24 h (Meta: 250, 2000...)."),
        click.option("--daily-reserve", type=int, metavar="N", help="Of the daily limit, kept for high-priority messages."),
        click.option("--warmup", metavar="N,N,...", help="Daily limits for day 1, 2, ... of a new number ('none' clears)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _options(values: dict[str, Any], enable: bool = False) -> SenderOptions:
    warmup = values.pop("warmup", None)
    return SenderOptions(**values, warmup=None if warmup is None else parse_warmup(warmup), enable=enable)


@senders.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every sender: state, gap, today's limit, messages waiting, recipients sticking to it."""
    settings = settings_from(ctx)
    with db_session(settings) as session:
        rows = list_senders(session, settings)
    emit(rows, as_json, lambda r: table([_row_text(x) for x in r], LIST_COLUMNS))


def _row_text(row: dict[str, Any]) -> dict[str, Any]:
    gap = row["gap_seconds"]
    until = row["pause"]["until"] if row["pause"] else None
    pause_until = "until resumed" if row["pause"] and until is None else _utc(until) if until else None
    return row | {"gap_seconds": f"{gap[0]:g}-{gap[1]:g}" if isinstance(gap, list) else f"{gap:g}", "pause_until": pause_until}


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@senders.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """One sender in full. Secrets are never shown: only the names of their variables, and
    whether each is set in this shell's environment."""
    settings = settings_from(ctx)
    with db_session(settings) as session:
        view = show_sender(session, settings, name)
    emit(view, as_json, _show_text)


def _show_text(view: dict[str, Any]) -> str:
    lines = [f"{key}: {'-' if value is None else value}" for key, value in _row_text(view).items()
             if key not in ("settings", "secret_variables_set", "queues", "pause", "from_environment")]
    lines += [f"setting {key}: {value}" for key, value in view["settings"].items()]
    lines += [f"secret in ${var}: {'set' if present else 'NOT SET in this environment'}"
              for var, present in view["secret_variables_set"].items()]
    if view["pause"]:
        lines.append(f"pause: {view['pause']['reason']}")
    lines.append("queues: " + ", ".join(view["queues"]))
    return "\n".join(lines)


@senders.command("add")
@click.argument("name")
@sender_options
@click.pass_context
def add(ctx: click.Context, /, name: str, **values: Any) -> None:
    """Add the sender NAME (a-z, 0-9, '_', '-'; up to 32). Its secret stays in the environment:
    give the variable's name (--token-env WA_TOKEN_SALES), never the token."""
    with db_session(settings_from(ctx)) as session:
        added = add_sender(session, cli_actor(), name, _options(values))
    click.echo(f"added sender {name}")
    for warning in added["warnings"]:
        click.echo(f"Warning: {warning}", err=True)


@senders.command("set")
@click.argument("name")
@sender_options
@click.option("--enable", is_flag=True, help="Route new messages to it again after `senders disable`.")
@click.pass_context
def set_(ctx: click.Context, /, name: str, enable: bool, **values: Any) -> None:
    """Change a sender: the options given change, the others stay. Sender processes pick up
    the change within seconds."""
    with db_session(settings_from(ctx)) as session:
        changed = set_sender(session, cli_actor(), name, _options(values, enable))
    click.echo(f"sender {name}: changed {', '.join(changed['changed'])}")


@senders.command("pause")
@click.argument("name")
@click.option("--for", "duration", metavar="DURATION", help="How long (45s, 30m, 2h, 7d); without it, until resumed.")
@click.option("--reason", help="Why, for whoever looks at `wanotify senders list` next.")
@json_option
@click.pass_context
def pause(ctx: click.Context, name: str, duration: str | None, reason: str | None, as_json: bool) -> None:
    """Hold this sender's messages (the others keep sending); its call in flight finishes."""
    try:
        span = parse_age(duration) if duration else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--for") from None
    settings = settings_from(ctx)
    with db_session(settings) as session:
        held = pausing.pause(session, settings.namespace, cli_actor(), reason, name, duration=span)
    until = f"until {_utc(held.until)}" if held.until else "until resumed"
    emit({"sender": name, "paused": True} | held.as_dict(), as_json,
         f"sender {name} paused {until}; `wanotify senders resume {name}` restarts it")


@senders.command("resume")
@click.argument("name")
@json_option
@click.pass_context
def resume(ctx: click.Context, name: str, as_json: bool) -> None:
    """Restart a paused sender (by hand or after a quality code); its gap is still kept."""
    settings = settings_from(ctx)
    with db_session(settings) as session:
        lifted = pausing.resume(session, settings.namespace, cli_actor(), name)
    emit({"sender": name, "paused": False, "lifted": lifted.as_dict() if lifted else None}, as_json,
         f"sender {name} resumed (lifted: {lifted.reason})" if lifted else f"sender {name} was not paused")


@senders.command("disable")
@click.argument("name")
@click.pass_context
def disable(ctx: click.Context, name: str) -> None:
    """Route no new message to NAME: its recipients move to another sender for their next
    messages. What already waits in its queues stays there until `senders drain`."""
    with db_session(settings_from(ctx)) as session:
        done = disable_sender(session, cli_actor(), name)
    click.echo(f"sender {name} {'was already' if done['already'] else 'is now'} disabled")
    if done["waiting"]:
        click.echo(f"{done['waiting']} message(s) wait for it: `wanotify senders drain {name} --to OTHER` moves them",
                   err=True)
    if done["pinned_by"]:
        click.echo(f"Warning: rules for {', '.join(done['pinned_by'])} pin {name}; their messages now go to each "
                   "recipient's own sender", err=True)


@senders.command("drain")
@click.argument("name")
@click.option("--to", "target", required=True, metavar="OTHER", help="The active sender that takes the messages.")
@json_option
@click.pass_context
def drain(ctx: click.Context, name: str, target: str, as_json: bool) -> None:
    """Move every message waiting in NAME's queues to OTHER's (same priority), with their
    recipients. Safe to interrupt and to run again."""
    settings = settings_from(ctx)
    show_bar = sys.stderr.isatty() and not as_json

    def progress(moved: int, total: int) -> None:
        if show_bar or moved == total or moved % 1000 == 0:
            click.echo(f"\rmoved {moved} of {total}", err=True, nl=not show_bar or moved >= total)

    drained = asyncio.run(SenderDrain(settings, cli_actor()).run(name, target, progress))
    emit({"sender": name, "to": target} | drained.as_dict(), as_json,
         f"moved {drained.moved} message(s) from {name} to {target}")
