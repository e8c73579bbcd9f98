"""What every command shares: settings from the environment, output as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory, transaction

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def settings_from(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@contextmanager
def db_session(settings: Settings) -> Iterator[Session]:
    """A transaction on the configured database.

    Its failures (unreachable, no schema) reach the user as one line through ``wanotify.ops.cli.errors``.
    """
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with transaction(session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | str, *, compact: bool = False) -> None:
    """Print ``data`` as JSON (one line per object when ``compact``), or through ``text`` for people."""
    if as_json:
        click.echo(json.dumps(data, default=str, ensure_ascii=False, indent=None if compact else 2))
    else:
        click.echo(text(data) if callable(text) else text)


def parse_json_object(raw: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{what} must be a JSON object")
    return value


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain aligned table (stable for scripts that grep, and for narrow terminals)."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."
