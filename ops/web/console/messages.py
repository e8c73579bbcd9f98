"""Messages: search (by phone in any accepted form, event id, message id, template, status,
dates), newest first with keyset pages, and one message's whole story."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from wanotify.ops.admin import messages as service
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, whole_number
from wanotify.shared.db.models import Status

FIELDS = ("phone", "event_id", "id", "template", "status", "from", "to")


async def listing(ctx: Ctx) -> Response:
    params = {k: ctx.request.query_params.get(k, "") for k in FIELDS}
    query = service.parse_query(params, ctx.console.settings.default_region)
    after = _after(ctx.request.query_params.get("after"))
    found = await ctx.db(service.search, query, after)
    templates = await ctx.db(service.templates_in_use)
    kept = {k: v for k, v in params.items() if v}
    return ctx.render("messages.html", title="Messages", params=params, problems=query.problems,
                      rows=found["rows"], templates=templates, statuses=[s.value for s in Status],
                      older=f"/messages?{urlencode({**kept, 'after': found['next_after']})}" if found["next_after"] else None,
                      newest=f"/messages?{urlencode(kept)}" if after else None)


async def one(ctx: Ctx) -> Response:
    message = await ctx.db(service.detail, int(ctx.request.path_params["id"]))
    if message is None:
        return ctx.console.error(ctx, 404, "No such message", f"There is no message #{ctx.request.path_params['id']}.")
    return ctx.render("message.html", title=f"Message #{message['id']}", m=message)


def _after(raw: str | None) -> int | None:
    return whole_number(raw)


PAGE = Page(routes=[get("/messages", listing), get("/messages/{id:int}", one)],
            nav=[NavEntry("Messages", "/messages", order=20)])
