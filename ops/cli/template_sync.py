"""``wanotify templates sync``: compare the template mappings with the account's approved templates.

A sub-command of the ``templates`` group, which ops/cli/admin.py defines; kept in its own module.
"""

from __future__ import annotations

import click

from wanotify.ops.cli.common import db_session, emit, json_option, settings_from
from wanotify.shared.db.engine import make_engine, session_factory
from wanotify.shared.template_sync import SyncReport, sync_templates


@click.command("sync")
@json_option
@click.pass_context
def templates_sync(ctx: click.Context, as_json: bool) -> None:
    """Read the account's templates from Meta (WHATSAPP_WABA_ID, WHATSAPP_ACCESS_TOKEN), store them,
    and report every mapping that would fail: a missing template or language, a status other than
    APPROVED, a different number of parameters. Exits with 1 when there is any."""
    settings = settings_from(ctx)
    with db_session(settings):  # an unreachable or unmigrated database is one clear line, before Meta is asked
        pass
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        report = sync_templates(settings, session_factory(engine))
    finally:
        engine.dispose()
    emit(report.as_dict(), as_json, lambda _: _text(report))
    if report.mismatches:
        ctx.exit(1)


def _text(report: SyncReport) -> str:
    head = f"{report.fetched} template(s) in the account"
    if not report.mismatches:
        return f"{head}; every mapping matches an APPROVED template"
    lines = [f"{head}; {len(report.mismatches)} mismatch(es):"]
    lines += [f"  - {m.detail}" for m in report.mismatches]
    return "\n".join(lines)
