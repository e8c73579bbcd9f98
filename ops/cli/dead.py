"""Dead letters and manual recovery: ``dead …``, ``retry-failed``, ``queue clear``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import click

from wanotify.ops.admin.actions import Admin, Outcome, count_failed, count_waiting
from wanotify.ops.admin.audit import cli_actor
from wanotify.ops.admin.dead_letters import (
    EVENT_REASONS,
    MESSAGE_REASONS,
    DeadFilter,
    count_dead,
    list_dead,
    parse_age,
    parse_id,
    parse_reason,
    refuse_unknown,
    show,
)
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table


def _duration(_ctx: Any, _param: Any, value: str | None) -> timedelta | None:
    try:
        return None if value is None else parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _ids(_ctx: Any, _param: Any, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(parse_id(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _reason(_ctx: Any, _param: Any, value: str | None) -> str | None:
    try:
        return None if value is None else parse_reason(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


REASON_HELP = (f"Only this reason. Messages: {', '.join(MESSAGE_REASONS)}. "
               f"Events: {', '.join(EVENT_REASONS)}. `dead list` shows the reasons present.")


def filters(fn: Any) -> Any:
    options = [
        click.option("--kind", type=click.Choice(["messages", "events", "all"]), default="all", show_default=True),
        click.option("--reason", callback=_reason, help=REASON_HELP),
        click.option("--template", help="Only this template's messages, and events parked because of it "
                                        "(template_error, template_missing)."),
        click.option("--older-than", callback=_duration, help="Only parked longer ago than this (45s, 30m, 2h, 7d)."),
        click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000)),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _filter(ids: tuple[str, ...], kind: str, reason: str | None, template: str | None,
            older_than: timedelta | None) -> DeadFilter:
    return DeadFilter(ids=ids, reason=reason, template=template, older_than=older_than, kind=kind)


@click.group()
def dead() -> None:
    """Parked messages (m<id>) and events (e<id>): inspect, replay, purge."""


@dead.command("list")
@filters
@json_option
@click.pass_context
def dead_list(ctx: click.Context, /, as_json: bool, limit: int, **f: Any) -> None:
    """List parked messages and events, oldest first."""
    with db_session(settings_from(ctx)) as session:
        rows = list_dead(session, _filter((), **f), limit)
    emit(rows, as_json, lambda r: table(r, ["id", "reason", "template", "attempts", "parked_at", "error"]))


@dead.command("show")
@click.argument("dead_id", callback=lambda c, p, v: _ids(c, p, (v,))[0])
@json_option
@click.pass_context
def dead_show(ctx: click.Context, dead_id: str, as_json: bool) -> None:
    """Everything about one parked message or event, including its text or body."""
    with db_session(settings_from(ctx)) as session:
        row = show(session, dead_id)  # a message or event that is not parked: one line, exit code 1
    emit(row, as_json, lambda r: "\n".join(f"{k:>10}: {v}" for k, v in r.items()))


def _selection(ids: tuple[str, ...], everything: bool, f: dict[str, Any]) -> DeadFilter:
    narrowed = any(f[k] for k in ("reason", "template", "older_than")) or f["kind"] != "all"
    if not ids and not everything and not narrowed:
        raise click.UsageError("name IDs, or use --all (optionally narrowed by --kind/--reason/--template/--older-than)")
    if ids and everything:
        raise click.UsageError("give IDs or --all, not both")
    return _filter(ids, **f)


def _run(ctx: click.Context, action: str, *args: Any) -> Outcome:
    async def go() -> Outcome:
        async with Admin(settings_from(ctx), cli_actor()) as admin:
            outcome: Outcome = await getattr(admin, action)(*args)
            return outcome
    return asyncio.run(go())


def _report(outcome: Outcome, as_json: bool) -> None:
    emit(outcome.counts, as_json, lambda c: ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in c.items()) or "nothing to do")


def _counted(ctx: click.Context, verb: str, selection: DeadFilter, limit: int) -> dict[str, int]:
    """The dry run: how many messages and events the action would take (ids are checked first)."""
    with db_session(settings_from(ctx)) as session:
        refuse_unknown(session, selection, "done")
        return count_dead(session, selection, limit, replay=verb == "replay")


def _confirm_or_stop(ctx: click.Context, verb: str, selection: DeadFilter, limit: int, dry_run: bool, yes: bool,
                     as_json: bool) -> bool:
    """Print the dry run and stop, or ask (showing the count); True to go ahead."""
    if not dry_run and yes:
        return True
    counts = _counted(ctx, verb, selection, limit)
    what = f"{counts['messages']} message(s) and {counts['events']} event(s)"
    if dry_run:
        emit({"dry_run": True, **counts}, as_json, f"would {verb} {what}")
        return False
    if not sum(counts.values()):
        emit({"dry_run": False, **counts}, as_json, f"nothing to {verb}")
        return False
    if not click.confirm(f"{verb.capitalize()} {what}?", default=False, err=True):
        raise click.Abort
    return True


def _bulk_options(fn: Any) -> Any:
    fn = click.option("--dry-run", is_flag=True, help="Only count what would be done.")(fn)
    fn = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(fn)
    return click.option("--all", "everything", is_flag=True, help="Every parked item the filters select.")(fn)


@dead.command("replay")
@click.argument("ids", nargs=-1, callback=_ids)
@_bulk_options
@filters
@json_option
@click.pass_context
def dead_replay(ctx: click.Context, /, ids: tuple[str, ...], everything: bool, yes: bool, dry_run: bool, as_json: bool,
                limit: int, **f: Any) -> None:
    """Send parked messages again (same log row, history kept, fresh retry budget) and
    re-process parked events (re-rendered with their own event_id, so fix the template first).
    Replaying twice never sends twice. A selection by filters (--all, --reason…) shows how many
    it takes and asks first; IDs that name no dead letter refuse the whole replay."""
    selection = _selection(ids, everything, f)
    if not ids or dry_run:
        if not _confirm_or_stop(ctx, "replay", selection, limit, dry_run, yes, as_json):
            return
    _report(_run(ctx, "replay", selection, limit), as_json)


@dead.command("purge")
@click.argument("ids", nargs=-1, callback=_ids)
@_bulk_options
@filters
@json_option
@click.pass_context
def dead_purge(ctx: click.Context, /, ids: tuple[str, ...], everything: bool, yes: bool, dry_run: bool, as_json: bool,
               limit: int, **f: Any) -> None:
    """Drop parked items for good (messages are kept in the log as cancelled). Shows how many
    it takes and asks first."""
    selection = _selection(ids, everything, f)
    if _confirm_or_stop(ctx, "purge", selection, limit, dry_run, yes, as_json):
        _report(_run(ctx, "purge", selection, limit), as_json)


@click.command("retry-failed")
@click.option("--limit", default=10000, show_default=True, type=click.IntRange(1, 1000000))
@click.option("--dry-run", is_flag=True, help="Only count the failed messages that would be sent again.")
@json_option
@click.pass_context
def retry_failed(ctx: click.Context, limit: int, dry_run: bool, as_json: bool) -> None:
    """Queue every failed message for another call now (they still wait for the gap).

    Failed messages are retried automatically while auto_retry_enabled is true; use this
    after turning it off, or to skip the remaining retry delay."""
    if dry_run:
        with db_session(settings_from(ctx)) as session:
            failed = count_failed(session, limit)
        emit({"dry_run": True, "messages": failed}, as_json, f"would send {failed} failed message(s) again")
        return
    _report(_run(ctx, "retry_failed", limit), as_json)


@click.group()
def queue() -> None:
    """Emergency controls for the send queue."""


@queue.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only count the messages that would be cancelled.")
@json_option
@click.pass_context
def queue_clear(ctx: click.Context, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Drop every message waiting to be sent (and waiting retries); their log rows become cancelled.
    Asks first, showing how many are waiting."""
    confirmed = None  # with --yes: whatever waits when it runs
    if dry_run or not yes:
        with db_session(settings_from(ctx)) as session:
            waiting = count_waiting(session)
        if dry_run:
            emit({"dry_run": True, "messages": waiting}, as_json, f"would cancel {waiting} waiting message(s)")
            return
        if not click.confirm(f"Cancel the {waiting} message(s) waiting to be sent?", default=False, err=True):
            raise click.Abort
        confirmed = waiting  # more or fewer by then: nothing is cancelled, and it says so
    _report(_run(ctx, "clear_queue", confirmed), as_json)
