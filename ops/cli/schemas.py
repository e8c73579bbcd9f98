"""``wanotify schemas export [DIR] [--check]``: the published JSON Schemas and AsyncAPI document.

Writes DIR/schemas/*.json (the envelope, one per catalogue event type, the status event) and
DIR/asyncapi.yaml, generated from the models wanotify validates with. ``--check`` writes
nothing and fails when the files differ from the code: the tests run it on docs/.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from wanotify.ops.cli.errors import CliFailure
from wanotify.shared.asyncapi import DOCUMENT_PATH, render_asyncapi
from wanotify.shared.schemas import schema_documents

SCHEMA_FOLDER = "schemas"


@click.group()
def schemas() -> None:
    """Published JSON Schemas of events and status events, and the AsyncAPI document."""


@schemas.command("export")
@click.argument("directory", default="docs", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the files in DIRECTORY differ from the code.")
def export(directory: Path, check: bool) -> None:
    """Write the schemas and asyncapi.yaml under DIRECTORY (default: docs)."""
    wanted = rendered_files()
    changes = plan(directory, wanted)
    if check:
        if changes:
            listing = "; ".join(f"{path} ({what})" for path, what in changes.items())
            raise CliFailure(f"{len(changes)} published file(s) under {directory} differ from the code: {listing} — "
                             f"run `wanotify schemas export {directory}` and commit the result")
        click.echo(f"{directory}: all {len(wanted)} published files match the code")
        return
    apply(directory, wanted, changes)
    for path, what in changes.items():
        click.echo(f"{what:>8}  {directory / path}")
    written = sum(1 for what in changes.values() if what != "removed")
    click.echo(f"{directory}: {written} written, {len(changes) - written} removed, {len(wanted) - written} unchanged")


def rendered_files() -> dict[str, str]:
    """Every published file's text, by its path under the docs folder."""
    files = {path: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for path, schema in schema_documents().items()}
    files[DOCUMENT_PATH] = render_asyncapi()
    return files


def plan(directory: Path, wanted: dict[str, str]) -> dict[str, str]:
    """What export would do, by path: ``added``, ``changed`` or ``removed`` (a schema the code
    no longer has, such as an event type that left the catalogue)."""
    changes = {}
    for path, text in wanted.items():
        target = directory / path
        if not target.is_file():
            changes[path] = "added"
        elif target.read_text(encoding="utf-8") != text:
            changes[path] = "changed"
    for stale in sorted((directory / SCHEMA_FOLDER).rglob("*.json")) if (directory / SCHEMA_FOLDER).is_dir() else []:
        path = stale.relative_to(directory).as_posix()
        if path not in wanted:
            changes[path] = "removed"
    return changes


def apply(directory: Path, wanted: dict[str, str], changes: dict[str, str]) -> None:
    for path, what in changes.items():
        target = directory / path
        if what == "removed":
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted[path], encoding="utf-8")

