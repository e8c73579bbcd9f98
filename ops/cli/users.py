"""Console accounts: ``users add|list|remove|set-password``. Passwords never go through argv."""

from __future__ import annotations

import sys

import click

from wanotify.ops.admin import audit
from wanotify.ops.admin.users import Role, add_user, check_password, list_users, remove_user, set_password
from wanotify.ops.cli.common import db_session, emit, json_option, settings_from, table

ROLES = click.Choice([r.label for r in Role], case_sensitive=False)
password_stdin = click.option("--password-stdin", is_flag=True,
                              help="Read the password from the first line of standard input (for scripts).")


@click.group()
def users() -> None:
    """Accounts of the admin console (`wanotify run web`): viewer < operator < admin."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="viewer (read), operator (actions), admin (templates, settings).")
@password_stdin
@click.pass_context
def add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Create the account NAME; the password is asked for twice (or read with --password-stdin)."""
    password = _password(password_stdin)
    with db_session(settings_from(ctx)) as session:
        add_user(session, name, Role.parse(role), password)
        audit.record(session, audit.cli_actor(), "user.add", target={"user": name, "role": role.lower()}, count=1)
    click.echo(f"added {role.lower()} {name}")


@users.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every account, its role, and when it last logged in."""
    with db_session(settings_from(ctx)) as session:
        rows = list_users(session)
    emit(rows, as_json, lambda r: table(r, ["username", "role", "created_at", "last_login_at"]))


@users.command("remove")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Delete the account NAME; its open console sessions end at their next request."""
    with db_session(settings_from(ctx)) as session:
        remove_user(session, name)
        audit.record(session, audit.cli_actor(), "user.remove", target={"user": name}, count=1)
    click.echo(f"removed {name}")


@users.command("set-password")
@click.argument("name")
@password_stdin
@click.pass_context
def set_password_(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """A new password for NAME (asked twice, or --password-stdin); its open sessions end."""
    password = _password(password_stdin)
    with db_session(settings_from(ctx)) as session:
        set_password(session, name, password)
        audit.record(session, audit.cli_actor(), "user.set_password", target={"user": name}, count=1)
    click.echo(f"password changed for {name}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    check_password(password)
    return password

