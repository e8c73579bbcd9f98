"""``wanotify optouts list|add|remove``: recipients who asked for no more messages.

Phones are accepted in any form an event's ``phone`` is (``08114040707``, ``+62 811-4040-707``,
``0062…``; DEFAULT_REGION for numbers without a country code) and shown masked.
"""

from __future__ import annotations

from typing import Any

import click

from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table
from wanotify.shared import recipients
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.phone import mask_phone, normalize_phone


@click.group()
def optouts() -> None:
    """Recipients who opted out (a STOP reply, WhatsApp's own opt-out, or an operator):
    OPT_OUT_SCOPE says which of their messages are not sent."""


@optouts.command("list")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@json_option
@click.pass_context
def optouts_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Opted-out recipients, newest first, with how and why; numbers masked."""
    with db_session(settings_from(ctx)) as session:
        rows = [_shown(row) for row in recipients.opted_out(session, limit)]
    emit(rows, as_json, lambda r: table(r, ["phone", "opted_out_at", "source", "reason"]))


@optouts.command("add")
@click.argument("phone")
@click.option("--reason", default=None, help="Why (kept and shown by `optouts list`).")
@json_option
@click.pass_context
def optouts_add(ctx: click.Context, phone: str, reason: str | None, as_json: bool) -> None:
    """Opt PHONE out (source cli). Adding it again only updates the reason."""
    settings = settings_from(ctx)
    number = _number(phone, settings.default_region)
    with db_session(settings) as session:
        recipients.opt_out(session, number, "cli", (reason or "").strip() or None)
    emit({"phone": mask_phone(number), "opted_out": True}, as_json, f"opted out {mask_phone(number)}")


@optouts.command("remove")
@click.argument("phone")
@json_option
@click.pass_context
def optouts_remove(ctx: click.Context, phone: str, as_json: bool) -> None:
    """Opt PHONE back in: its messages are sent again (those already stopped are not)."""
    settings = settings_from(ctx)
    number = _number(phone, settings.default_region)
    with db_session(settings) as session:
        removed = recipients.opt_in(session, number)
    if not removed:
        raise click.ClickException(f"{mask_phone(number)} has not opted out; see `wanotify optouts list`")
    emit({"phone": mask_phone(number), "opted_out": False}, as_json, f"opted in again {mask_phone(number)}")


def _number(raw: str, region: str) -> str:
    try:
        return normalize_phone(raw, region)
    except InvalidEvent as exc:
        raise click.BadParameter(f"{exc.detail} (DEFAULT_REGION={region})", param_hint="PHONE") from None


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "phone": mask_phone(row["phone"])}
