"""Schema, templates and runtime settings: ``migrate``, ``templates …``, ``settings …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from wanotify.ops.admin import mappings as mapping_service
from wanotify.ops.admin import templates as template_service
from wanotify.ops.admin.audit import cli_actor
from wanotify.ops.admin.mappings import MappingChange
from wanotify.ops.cli.common import db_session, emit, json_option, parse_json_object, settings_from, table
from wanotify.ops.cli.template_sync import templates_sync
from wanotify.shared import runtime
from wanotify.shared.db.engine import create_database_if_missing, make_engine, session_factory, transaction
from wanotify.shared.db.models import Template
from wanotify.shared.db.seed import seed_defaults
from wanotify.shared.meta_templates import CATEGORIES


@click.command()
@json_option
@click.pass_context
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Create the database if missing, upgrade the schema (Alembic), seed default templates and rules.

    Safe to run again: existing templates and rules are never overwritten.
    """
    # Alembic loads here, not with every command (it is most of the command line's start-up time).
    from alembic.util.exc import CommandError

    from wanotify.shared.db.migrate import upgrade

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


templates.add_command(templates_sync)


def _template_dict(t: Template) -> dict[str, Any]:
    return {"key": t.key, "language": t.language, "active": t.active, "updated_at": t.updated_at, "body": t.body,
            "meta": mapping_service.describe(t)}


def _mapping_text(meta: dict[str, Any] | None) -> str:
    if meta is None:
        return "Outside the 24-hour window: no approved template is mapped (such messages are parked as " \
               "no_approved_template)"
    return (f"Outside the 24-hour window: approved template {meta['name']} ({meta['language']}, {meta['category']})"
            f", parameters {json.dumps(meta['params'], ensure_ascii=False)}")


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
    emit(row, as_json, lambda r: f"{r['key']} ({r['language']}, {'active' if r['active'] else 'inactive'})\n\n"
                                 f"{r['body']}\n\n{_mapping_text(r['meta'])}")


@templates.command("set")
@click.argument("key")
@click.option("--body", help="The template text (Jinja2).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the template text from a file.")
@click.option("--language", default=None, help="Language code, e.g. id or en.")
@click.option("--active/--inactive", default=None, help="Inactive templates are not used (default: new ones are "
              "active, an edit keeps the current state).")
@click.option("--meta-name", help="The approved WhatsApp template sent outside the 24-hour window.")
@click.option("--meta-language", help="Its language code, e.g. id or en_US (default: DEFAULT_LANGUAGE).")
@click.option("--meta-category", type=click.Choice(CATEGORIES, case_sensitive=False),
              help="Its category; an opt-out stops marketing ones (OPT_OUT_SCOPE).")
@click.option("--meta-params", help='How the event fills its parameters, e.g. \'{"body": ["{{ name }}"]}\' '
              "(see the README).")
@click.option("--no-meta", is_flag=True, help="Remove the mapping: outside the window its messages are parked.")
@json_option
@click.pass_context
def templates_set(ctx: click.Context, key: str, body: str | None, path: Path | None, language: str | None,
                  active: bool | None, meta_name: str | None, meta_language: str | None, meta_category: str | None,
                  meta_params: str | None, no_meta: bool, as_json: bool) -> None:
    """Create or replace a template, after checking it: its syntax and filters, the variables
    the events that use it provide (see the event catalogue in the README), and a render with
    sample data. Every change is kept in the template's history (`templates history KEY`).

    The --meta-* options map it to an approved WhatsApp template (or --no-meta removes the
    mapping); they are checked the same way, and may be given without --body."""
    change = MappingChange(meta_name, meta_language, meta_category, meta_params, no_meta)
    if no_meta and any(v is not None for v in (meta_name, meta_language, meta_category, meta_params)):
        raise click.UsageError("--no-meta removes the mapping: give it without the other --meta-* options")
    if (body is not None and path is not None) or (body is None and path is None and not change.given):
        raise click.UsageError("give exactly one of --body or --file, and/or the --meta-* options")
    settings = settings_from(ctx)
    with db_session(settings) as session:
        saved: dict[str, Any] = {"key": key, "created": False, "changed": False}
        if body is not None or path is not None:
            text = (body if body is not None else _read_text(path)).strip()  # type: ignore[arg-type]
            saved = template_service.save(session, cli_actor(), key, text, language=language, active=active,
                                          default_language=settings.default_language)
        if change.given:
            mapped = mapping_service.set_mapping(session, cli_actor(), key, change, settings.default_language)
            saved |= {"changed": saved["changed"] or mapped["changed"], "meta": mapped}
    verb = "created" if saved["created"] else "saved" if saved["changed"] else "unchanged:"
    emit(saved, as_json, lambda r: "\n".join([f"{verb} template {key}", *(r.get("meta") or {}).get("warnings", [])]))


@templates.command("delete")
@click.argument("key")
@json_option
@click.pass_context
def templates_delete(ctx: click.Context, key: str, as_json: bool) -> None:
    """Delete a template; refused while a rule uses it. Its history is kept."""
    with db_session(settings_from(ctx)) as session:
        template_service.delete(session, cli_actor(), key)
    emit({"key": key, "deleted": True}, as_json, f"deleted template {key}")


@templates.command("history")
@click.argument("key")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@json_option
@click.pass_context
def templates_history(ctx: click.Context, key: str, limit: int, as_json: bool) -> None:
    """Who changed a template, when, and how (newest first)."""
    with db_session(settings_from(ctx)) as session:
        changes = template_service.history(session, key, limit)
    emit(changes, as_json, lambda rows: "\n\n".join(
        f"{c['at']:%Y-%m-%d %H:%M:%S} {c['actor']}\n{c['diff'] or '(no change)'}" for c in rows) or "(no changes)")


@templates.command("preview")
@click.argument("key")
@click.option("--data", "data", default="{}", help="JSON object of variables; sample values fill the rest.")
@json_option
@click.pass_context
def templates_preview(ctx: click.Context, key: str, data: str, as_json: bool) -> None:
    """Render a template with sample data (and your --data), without sending anything: the
    text, and the exact Cloud API JSON inside the 24-hour window (text) and outside it (the
    mapped approved template)."""
    variables = parse_json_object(data, "--data")  # the preview fills the rest as the check does
    settings = settings_from(ctx)
    with db_session(settings) as session:
        shown = mapping_service.preview(session, key, variables, settings.default_region)
    emit(shown, as_json, _preview_text)


def _preview_text(shown: dict[str, Any]) -> str:
    template = shown["template_payload"]
    outside = json.dumps(template, ensure_ascii=False, indent=2) if template else \
        "(no approved template mapped: such a message is parked as no_approved_template)"
    return (f"{shown['text']}\n\nCloud API JSON inside the 24-hour window (text):\n"
            f"{json.dumps(shown['text_payload'], ensure_ascii=False, indent=2)}\n\n"
            f"Cloud API JSON outside it (approved template):\n{outside}")


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


def _read_text(path: Path) -> str:
    try:  # utf-8-sig drops the byte-order mark Windows editors write ("UTF-8 with BOM")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8",
                                 param_hint="--file") from None
