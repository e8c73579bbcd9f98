"""The overview at ``/``: what the sender is doing, what waits, what happened (filled in below)."""

from __future__ import annotations

from starlette.responses import Response

from ops.web.console.kit import Ctx, NavEntry, Page, get


async def overview(ctx: Ctx) -> Response:
    return ctx.render("error.html", title="Overview", text="coming")


PAGE = Page(routes=[get("/", overview)], nav=[NavEntry("Overview", "/", order=10)])
