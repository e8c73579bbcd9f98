"""Audit: every action taken from the console or the command line, newest first."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from wanotify.ops.admin import audit
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, whole_number

PAGE_SIZE = 50


async def listing(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    before = whole_number(q.get("before"))
    actor, action = q.get("actor", "").strip() or None, q.get("action", "").strip() or None
    entries = await ctx.db(audit.recent, before_id=before, limit=PAGE_SIZE + 1, actor=actor, action=action)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    kept = {k: v for k, v in (("actor", actor), ("action", action)) if v}
    older = f"/audit?{urlencode({**kept, 'before': entries[-1]['id']})}" if more else None
    return ctx.render("audit.html", title="Audit log", entries=entries, actor=actor or "", action=action or "",
                      older=older, newest=f"/audit?{urlencode(kept)}" if before else None)


PAGE = Page(routes=[get("/audit", listing)], nav=[NavEntry("Audit log", "/audit", order=90)])
