"""Bulk sends from a CSV file: ``broadcast create|list|show|cancel``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session, sessionmaker

from wanotify.ops.admin import broadcasts
from wanotify.ops.admin.audit import cli_actor
from wanotify.ops.admin.broadcast_csv import NoProgress
from wanotify.ops.admin.broadcast_csv import Progress as ProgressSink
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory
from wanotify.shared.priority import Priority

# Smaller files are checked in a second or so: a bar would only flicker.
PROGRESS_FROM_BYTES = 64 * 1024
LISTED_IN_TEXT = 20


@click.group()
def broadcast() -> None:
    """Send one template to every row of a CSV file (a 'phone' column plus the template's variables)."""


@broadcast.command("create")
@click.option("--template", required=True, help="The template to send (see `wanotify templates list`).")
@click.option("--csv", "path", required=True, type=click.Path(path_type=Path),
              help="UTF-8 CSV: a header line with 'phone' and the template's variables, then one row per recipient.")
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=Priority.LOW.value,
              show_default=True, help="Transactional messages (normal, high) always overtake 'low'.")
@click.option("--sender", default=None, help="Send every row from this sender instead of each recipient's own.")
@click.option("--dry-run", is_flag=True, help="Check every row and show previews and the ETA; queue nothing.")
@json_option
@click.pass_context
def create(ctx: click.Context, template: str, path: Path, priority: str, sender: str | None, dry_run: bool,
           as_json: bool) -> None:
    """Check every row exactly as the notifier will, then queue the valid ones.

    Invalid rows (with their line and reason) and repeated phone numbers are reported and
    skipped. Running the same file again (same template, priority and sender) queues nothing
    twice: each row is sent once. Try it first with --dry-run."""
    settings = settings_from(ctx)
    request = broadcasts.BroadcastRequest(path, template, Priority(priority), sender)
    with _sessions(settings) as sessions, _progress(path, as_json) as progress:
        if dry_run:
            result = broadcasts.dry_run(sessions, settings, request, progress)
        else:
            result = broadcasts.create(sessions, settings, cli_actor(), request, progress)
    emit(result, as_json, _report)


@broadcast.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@json_option
@click.pass_context
def list_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The newest broadcasts, with how many messages have gone and how many wait."""
    with db_session(settings_from(ctx)) as session:
        rows = broadcasts.list_broadcasts(session, limit)
    emit(rows, as_json, lambda r: table(r, ["id", "name", "template", "priority", "valid", "sent", "waiting",
                                            "failed", "cancelled", "created_at"]))


@broadcast.command("show")
@click.argument("broadcast_id", type=int)
@json_option
@click.pass_context
def show_command(ctx: click.Context, broadcast_id: int, as_json: bool) -> None:
    """One broadcast's progress by status, and when the rest will have gone."""
    settings = settings_from(ctx)
    with db_session(settings) as session:
        shown = broadcasts.show(session, settings, broadcast_id)
    emit(shown, as_json, _show_text)


@broadcast.command("cancel")
@click.argument("broadcast_id", type=int)
@json_option
@click.pass_context
def cancel_command(ctx: click.Context, broadcast_id: int, as_json: bool) -> None:
    """Stop a broadcast: every message of it not yet sent is cancelled (the call in flight finishes)."""
    with db_session(settings_from(ctx)) as session:
        done = broadcasts.cancel(session, cli_actor(), broadcast_id)
    late = (f"; {done['not_yet_logged']} rows had not reached the notifier yet: they are logged cancelled when they "
            "arrive") if done["not_yet_logged"] else ""
    emit(done, as_json, f"broadcast {broadcast_id}: {done['cancelled']} cancelled; {done['already_sent']} had already "
                        f"gone, {done['in_flight']} in flight{late}")


@contextmanager
def _sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


class _Bar:
    """The service's progress, as a rich bar on the terminal's stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def start(self, phase: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(phase, total=total)

    def update(self, done: int) -> None:
        self._progress.update(self._task, completed=done)


@contextmanager
def _progress(path: Path, as_json: bool) -> Iterator[ProgressSink]:
    """A bar for a large file on a terminal; nothing when piped, for JSON, or for small files."""
    large = path.is_file() and path.stat().st_size >= PROGRESS_FROM_BYTES
    if as_json or not large or not sys.stderr.isatty():
        yield NoProgress()
        return
    columns = (TextColumn("{task.description:>9}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _Bar(progress)


def _report(r: dict[str, Any]) -> str:
    lines = [f"{Path(r['file']).name}: {_count(r['rows'], 'row')} — {r['valid']} valid, {r['invalid']} invalid, "
             f"{_count(r['duplicates'], 'duplicate')}"]
    lines += _listed("invalid rows", [f"line {i['line']}: {i['reason']}" for i in r["invalid_rows"]], r["invalid"])
    lines += _listed("duplicate rows", [f"line {d['line']}: same phone as line {d['same_phone_as_line']}"
                                        for d in r["duplicate_rows"]], r["duplicates"])
    lines += _listed("previews", [f"line {p['line']} to {p['phone']}:\n    " + p["text"].replace("\n", "\n    ")
                                  for p in r["previews"]], len(r["previews"]))
    if r["dry_run"]:
        lines.append(f"would take about {_duration(r['eta_seconds'])} at the pool's gaps and daily limits")
        known = r["existing_broadcast_id"]
        lines.append(f"dry run: nothing queued (this file was already broadcast as {known})" if known
                     else "dry run: nothing queued; run again without --dry-run to send")
    else:
        lines.append(f"broadcast {r['broadcast_id']}: {r['queued']} queued, {r['already_queued']} already queued; "
                     f"about {_duration(r['eta_seconds'])} to send")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _listed(title: str, items: list[str], count: int) -> list[str]:
    if not items:
        return []
    more = [f"  … and {count - LISTED_IN_TEXT} more (--json lists them)"] if count > LISTED_IN_TEXT else []
    return [f"{title}:", *(f"  {item}" for item in items[:LISTED_IN_TEXT]), *more]


def _show_text(s: dict[str, Any]) -> str:
    sender = s["sender"] or "each recipient's own"
    head = [f"broadcast {s['id']}: {s['name']} — template {s['template']}, priority {s['priority']}, sender {sender}",
            f"rows: {s['rows']} ({s['valid']} valid), created {s['created_at']:%Y-%m-%d %H:%M} by {s['created_by']}"]
    if s["cancelled_at"]:
        head.append(f"cancelled at {s['cancelled_at']:%Y-%m-%d %H:%M}")
    counts = [f"  {status:>9}: {n}" for status, n in s["by_status"].items()]
    if s["not_yet_logged"]:
        counts.append(f"  not yet logged by the notifier: {s['not_yet_logged']}")
    eta = s["eta_seconds"]
    tail = "done" if eta == 0 else "no sender may send now" if eta is None else f"about {_duration(eta)} to go"
    return "\n".join([*head, "by status:", *counts, tail])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "forever (no sender may send: see `wanotify status`)"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
