"""Schema, templates and runtime settings: ``migrate``, ``templates …``, ``settings …``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from alembic.util.exc import CommandError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from ops.cli.common import db_session, emit, json_option, parse_json_object, settings_from, table
from shared import runtime
from shared.db.engine import create_database_if_missing, make_engine, session_factory, transaction
from shared.db.migrate import upgrade
from shared.db.models import Template
from shared.db.seed import seed_defaults
from shared.errors import InvalidEvent
from shared.templates import SAMPLE_VARIABLES, check_syntax, render


def register(main: click.Group) -> None:
    main.add_command(migrate)
    main.add_command(templates)
    main.add_command(settings)


@click.command()
@json_option
@click.pass_context
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Create the database if missing, upgrade the schema (Alembic), seed default templates and rules.

    Safe to run again: existing templates and rules are never overwritten.
    """
    settings = settings_from(ctx)
    created = create_database_if_missing(settings.database_url)  # failures reach the user via ops.cli.errors
    try:
        upgrade(settings.database_url)
    except CommandError as exc:  # Alembic's own: e.g. the database is at a revision this code does not know
        raise click.ClickException(f"migration failed: {exc} — is this an older wanotify than the database?") from None
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with transaction(session_factory(engine)) as session:
            added = seed_defaults(session)
    finally:
        engine.dispose()
    result = {"database_created": created, "schema": "up to date", **{f"{k}_added": v for k, v in added.items()}}
    emit(result, as_json, lambda r: (
        f"{'created database; ' if r['database_created'] else ''}schema up to date; "
        f"seeded {r['templates_added']} template(s), {r['rules_added']} rule(s)"))


@click.group()
def templates() -> None:
    """Manage message templates (Jinja2, rendered in a sandbox)."""


def _template_dict(t: Template) -> dict[str, Any]:
    return {"key": t.key, "language": t.language, "active": t.active, "updated_at": t.updated_at, "body": t.body}


@templates.command("list")
@json_option
@click.pass_context
def templates_list(ctx: click.Context, as_json: bool) -> None:
    """List every template."""
    with db_session(settings_from(ctx)) as session:
        rows = [_template_dict(t) for t in session.scalars(select(Template).order_by(Template.key))]
    emit(rows, as_json, lambda r: table(r, ["key", "language", "active", "body"]))


@templates.command("show")
@click.argument("key")
@json_option
@click.pass_context
def templates_show(ctx: click.Context, key: str, as_json: bool) -> None:
    """Show one template in full."""
    with db_session(settings_from(ctx)) as session:
        found = session.get(Template, key)
        if found is None:
            raise click.ClickException(f"no template {key!r}; see `wanotify templates list`")
        row = _template_dict(found)
    emit(row, as_json, lambda r: f"{r['key']} ({r['language']}, {'active' if r['active'] else 'inactive'})\n\n{r['body']}")


@templates.command("set")
@click.argument("key")
@click.option("--body", help="The template text (Jinja2).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the template text from a file.")
@click.option("--language", default=None, help="Language code, e.g. id or en.")
@click.option("--active/--inactive", default=True, show_default=True, help="Inactive templates are not used.")
@json_option
@click.pass_context
def templates_set(ctx: click.Context, key: str, body: str | None, path: Path | None, language: str | None,
                  active: bool, as_json: bool) -> None:
    """Create or replace a template. Its syntax is checked before it is saved."""
    if (body is None) == (path is None):
        raise click.UsageError("give exactly one of --body or --file")
    text = (body if body is not None else path.read_text(encoding="utf-8")).strip()  # type: ignore[union-attr]
    try:
        check_syntax(text)
    except InvalidEvent as exc:
        raise click.ClickException(exc.detail) from None
    settings = settings_from(ctx)
    values = {"key": key, "body": text, "active": active, "language": language or settings.default_language}
    update = {"body": text, "active": active, "updated_at": func.now()} | ({"language": language} if language else {})
    with db_session(settings) as session:
        session.execute(insert(Template).values(values).on_conflict_do_update(index_elements=["key"], set_=update))
    emit({"key": key, "saved": True}, as_json, f"saved template {key}")


@templates.command("preview")
@click.argument("key")
@click.option("--data", "data", default="{}", help="JSON object of variables; sample values fill the rest.")
@json_option
@click.pass_context
def templates_preview(ctx: click.Context, key: str, data: str, as_json: bool) -> None:
    """Render a template with sample data (and your --data), without sending anything."""
    variables = SAMPLE_VARIABLES | parse_json_object(data, "--data")
    with db_session(settings_from(ctx)) as session:
        found = session.get(Template, key)
        if found is None:
            raise click.ClickException(f"no template {key!r}; see `wanotify templates list`")
        body = found.body
    try:
        text = render(body, variables)
    except InvalidEvent as exc:
        raise click.ClickException(exc.detail) from None
    emit({"key": key, "text": text}, as_json, lambda r: r["text"])


@click.group()
def settings() -> None:
    """Runtime settings, changed without a redeploy (the environment gives the defaults)."""


@settings.command("list")
@json_option
@click.pass_context
def settings_list(ctx: click.Context, as_json: bool) -> None:
    """Every runtime setting, its effective value and where the value comes from."""
    with db_session(settings_from(ctx)) as session:
        rows = runtime.describe(session, settings_from(ctx))
    emit(rows, as_json, lambda r: table(r, ["key", "value", "source", "description"]))


@settings.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", type=click.Choice(list(runtime.KEYS)))
@click.argument("value")
@json_option
@click.pass_context
def settings_set(ctx: click.Context, key: str, value: str, as_json: bool) -> None:
    """Set a runtime setting; running senders pick it up within a second.

    VALUE is checked against the setting's bounds (see `wanotify settings list`). It may look
    like an option (-1): it is still read as the value, and refused if out of bounds.
    """
    parsed = runtime.parse_value(key, value)  # a ConfigError, before connecting to anything
    with db_session(settings_from(ctx)) as session:
        stored = runtime.set_value(session, key, value)
    if key == "message_delay_seconds" and parsed == 0:
        click.echo("warning: a gap of 0 sends as fast as the provider answers; WhatsApp may rate-limit or ban "
                   "the number. Undo with `wanotify settings reset message_delay_seconds`.", err=True)
    emit({"key": key, "value": stored}, as_json, f"{key} = {stored}")


@settings.command("reset")
@click.argument("key", type=click.Choice(list(runtime.KEYS)))
@json_option
@click.pass_context
def settings_reset(ctx: click.Context, key: str, as_json: bool) -> None:
    """Forget a stored setting: the environment's default applies again."""
    with db_session(settings_from(ctx)) as session:
        value = runtime.reset(session, settings_from(ctx), key)
    emit({"key": key, "value": value, "source": "environment"}, as_json, f"{key} = {value} (from the environment)")
