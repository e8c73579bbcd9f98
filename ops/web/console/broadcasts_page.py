"""Broadcasts: each one's progress by status and its ETA. Viewers read; operators cancel what has
not been sent. The same service functions as ``wanotify broadcast``, the cancel in the audit log.
A broadcast is created from the command line (``wanotify broadcast create``): its file lives there."""

from __future__ import annotations

from starlette.responses import Response

from wanotify.ops.admin import broadcasts
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post


async def listing(ctx: Ctx) -> Response:
    rows = await ctx.db(broadcasts.list_broadcasts)
    return ctx.render("broadcasts.html", title="Broadcasts", rows=rows)


async def detail(ctx: Ctx) -> Response:
    broadcast_id = ctx.request.path_params["broadcast_id"]
    try:
        shown = await ctx.db(broadcasts.show, ctx.console.settings, broadcast_id)
    except ActionRefused as exc:
        return ctx.console.error(ctx, 404, "No such broadcast", str(exc))
    return ctx.render("broadcast.html", title=f"Broadcast {broadcast_id}", b=shown)


async def cancel(ctx: Ctx) -> Response:
    broadcast_id = ctx.request.path_params["broadcast_id"]
    try:
        done = await ctx.db(broadcasts.cancel, ctx.actor, broadcast_id)
    except ActionRefused as exc:
        return ctx.console.error(ctx, 404, "No such broadcast", str(exc))
    late = (f"; {done['not_yet_logged']} rows had not reached the notifier yet: they are logged cancelled when they arrive"
            if done["not_yet_logged"] else "")
    ctx.flash(f"Broadcast {broadcast_id}: {done['cancelled']} cancelled; {done['already_sent']} had already gone, "
              f"{done['in_flight']} in flight{late}.", "ok")
    return ctx.redirect(f"/broadcasts/{broadcast_id}")


PAGE = Page(
    routes=[get("/broadcasts", listing), get("/broadcasts/{broadcast_id:int}", detail),
            post("/broadcasts/{broadcast_id:int}/cancel", cancel)],
    nav=[NavEntry("Broadcasts", "/broadcasts", order=45)],
)
