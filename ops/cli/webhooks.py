"""Stored webhook payloads: ``webhooks list`` and ``webhooks replay``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table
from wanotify.ops.cli.dead import _duration  # the same "45s, 30m, 2h, 7d" as dead --older-than
from wanotify.ops.cli.errors import CliFailure
from wanotify.shared.db.engine import make_engine, session_factory
from wanotify.shared.receipts import list_payloads, replay_payloads


@click.group()
def webhooks() -> None:
    """Webhook payloads kept for WEBHOOK_RETENTION_DAYS: list them, apply them again."""


@webhooks.command("list")
@click.option("--since", callback=_duration, help="Only received within this long (45s, 30m, 2h, 7d).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
@click.pass_context
def webhooks_list(ctx: click.Context, since: timedelta | None, limit: int, as_json: bool) -> None:
    """Stored payloads, newest first: when, size, outcome, receipts by what they did."""
    with db_session(settings_from(ctx)) as session:
        rows = list_payloads(session, since=since, limit=limit)
    emit(rows, as_json, lambda r: table([_readable(row) for row in r],
                                        ["id", "received_at", "bytes", "outcome", "receipts"]))


@webhooks.command("replay")
@click.option("--since", callback=_duration, help="Replay what was received within this long (45s, 30m, 2h, 7d).")
@click.option("--id", "ids", multiple=True, type=click.IntRange(1), help="Replay this payload (repeatable).")
@json_option
@click.pass_context
def webhooks_replay(ctx: click.Context, since: timedelta | None, ids: tuple[int, ...], as_json: bool) -> None:
    """Apply stored payloads again. Receipts already applied change nothing; receipts whose
    message was unknown when they arrived are tried again."""
    if (since is None) == (not ids):
        raise click.UsageError("say what to replay: --since DURATION or --id N (not both)")
    settings = settings_from(ctx)
    # Inside db_session: an unreachable or unmigrated database is one clear line.
    with db_session(settings):
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            results = replay_payloads(session_factory(engine), since=since, ids=list(ids) or None,
                                      opt_out_keywords=settings.opt_out_keywords)
        finally:
            engine.dispose()
    # "events": what the payload's other changes did (messages, template and number updates), if it had any.
    rows = [{"id": r.payload_id, "receipts": r.counts, **({"events": r.events} if r.events else {})} for r in results]
    emit(rows, as_json, lambda r: f"replayed {len(r)} payload(s)\n" + table([_readable(x) for x in r],
                                                                             ["id", "receipts", "events"]))
    missing = sorted(set(ids) - {r.payload_id for r in results})
    if missing:  # the others were replayed (each replay is harmless to repeat): say which were not
        raise CliFailure(f"no stored payload with id {', '.join(map(str, missing))} — `wanotify webhooks list` "
                         "shows them")


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    def joined(counts: dict[str, int] | None) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted((counts or {}).items())) or "-"
    return {**row, "receipts": joined(row.get("receipts")), "events": joined(row.get("events"))}
