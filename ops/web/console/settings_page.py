"""Settings (admins): the runtime settings the sender picks up within a second, each with what it
means, where its value comes from, its bounds (checked when set) and a reset to the environment's
default. The same service as ``wanotify settings set|reset``."""

from __future__ import annotations

from starlette.responses import Response

from wanotify.ops.admin import settings as service
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.admin.users import Role
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post
from wanotify.shared import runtime


async def listing(ctx: Ctx) -> Response:
    rows = await ctx.db(service.listing, ctx.console.settings)
    return ctx.render("settings.html", title="Settings", rows=rows)


def _key(ctx: Ctx) -> str | None:
    key = str(ctx.request.path_params["key"])
    return key if key in runtime.KEYS else None


async def change(ctx: Ctx) -> Response:
    key = _key(ctx)
    if key is None:
        return ctx.console.error(ctx, 404, "No such setting", f"Known settings: {', '.join(runtime.KEYS)}.")
    try:
        value, warning = await ctx.db(service.change, ctx.actor, key, str(ctx.form.get("value") or ""))
        ctx.flash(f"{key} = {value}", "ok")
        if warning:
            ctx.flash(f"Warning: {warning}.", "warn")
    except ActionRefused as exc:
        ctx.flash(str(exc), "error")
    return ctx.redirect("/settings")


async def reset(ctx: Ctx) -> Response:
    key = _key(ctx)
    if key is None:
        return ctx.console.error(ctx, 404, "No such setting", f"Known settings: {', '.join(runtime.KEYS)}.")
    value = await ctx.db(service.reset, ctx.console.settings, ctx.actor, key)
    ctx.flash(f"{key} = {value} (from the environment)", "ok")
    return ctx.redirect("/settings")


ADMIN = Role.ADMIN
PAGE = Page(
    routes=[get("/settings", listing, role=ADMIN), post("/settings/{key}", change, role=ADMIN),
            post("/settings/{key}/reset", reset, role=ADMIN)],
    nav=[NavEntry("Settings", "/settings", role=ADMIN, order=50)],
)
