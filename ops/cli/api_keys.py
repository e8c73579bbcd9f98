"""HTTP API keys: ``api-keys create NAME | list | revoke NAME``. A key is printed once, at creation."""

from __future__ import annotations

import click

from wanotify.ops.admin import audit
from wanotify.ops.admin.api_keys import create_key, list_keys, revoke_key
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table


@click.group("api-keys")
def api_keys() -> None:
    """Keys for the HTTP API (`wanotify run web`, /api/v1): `Authorization: Bearer <key>`."""


@api_keys.command("create")
@click.argument("name")
@json_option
@click.pass_context
def create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create the key NAME and print it: it is shown this once (only its hash is stored)."""
    with db_session(settings_from(ctx)) as session:
        key = create_key(session, name)
        audit.record(session, audit.cli_actor(), "api_key.create", target={"name": name}, count=1)
    emit({"name": name, "key": key}, as_json,
         f"{key}\n\nThe API key {name!r}: store it now, it cannot be shown again. "
         "Send it as `Authorization: Bearer <key>`.")


@api_keys.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every key: name, first characters, state, when it was created, last used and revoked."""
    with db_session(settings_from(ctx)) as session:
        rows = list_keys(session)
    emit(rows, as_json, lambda r: table(r, ["name", "prefix", "state", "created_at", "last_used_at", "revoked_at"]))


@api_keys.command("revoke")
@click.argument("name")
@click.pass_context
def revoke(ctx: click.Context, name: str) -> None:
    """Revoke the key NAME: requests with it get 401 (within the API's cache time, a few seconds)."""
    with db_session(settings_from(ctx)) as session:
        revoke_key(session, name)
        audit.record(session, audit.cli_actor(), "api_key.revoke", target={"name": name}, count=1)
    click.echo(f"revoked {name}")

