"""The overview at ``/``: the senders' state, what waits and when it goes, what happened.

The page polls its live part (``/overview/live``) with htmx every ``refresh`` seconds — 30 by
default, as the dashboard it replaces; ``?refresh=2`` … ``60`` or ``?refresh=off`` in the URL.
The database figures and the broker's queue depths are read side by side: when RabbitMQ is
unreachable the page says so and shows the rest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import Response

from wanotify.ops.admin import overview as service
from wanotify.ops.web.console import charts
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get
from wanotify.shared.senders import load_senders

log = logging.getLogger(__name__)
DEFAULT_REFRESH = 30
REFRESH_RANGE = (2, 60)
REFRESH_CHOICES = (2, 5, 10, 30, 60)


def refresh_seconds(raw: str | None) -> int | None:
    """The refresh period from the URL: None for "off"; out-of-range numbers are brought in range."""
    if raw is None or raw == "":
        return DEFAULT_REFRESH
    if raw.strip().lower() in ("off", "0", "pause", "paused"):
        return None
    try:
        value = round(float(raw))
    except (ValueError, OverflowError):  # not a number, nan, inf
        return DEFAULT_REFRESH
    return min(max(value, REFRESH_RANGE[0]), REFRESH_RANGE[1])


async def page(ctx: Ctx) -> Response:
    return ctx.render("overview.html", title="Overview", **await _live(ctx))


async def live(ctx: Ctx) -> Response:
    return ctx.render("_overview_live.html", **await _live(ctx))


async def _live(ctx: Ctx) -> dict[str, Any]:
    refresh = refresh_seconds(ctx.request.query_params.get("refresh"))
    settings = ctx.console.settings
    now, done, past, (queues, broker_error) = await asyncio.gather(
        ctx.db(service.current, settings), ctx.db(service.outcomes), ctx.db(service.history, settings), _queues(ctx))
    figures = {**now, **done, **past}
    return {"o": figures, "queues": queues, "broker_error": broker_error, "refresh": refresh,
            "refresh_param": "off" if refresh is None else str(refresh), "refresh_choices": REFRESH_CHOICES,
            "charts": {"hourly": charts.activity(figures["hourly"]),
                       "daily": charts.activity(figures["daily"]),
                       "gaps": charts.gaps(figures["gaps"])}}


async def _queues(ctx: Ctx) -> tuple[list[dict[str, Any]] | None, str | None]:
    probe, lock = ctx.console.probe()
    senders = await ctx.db(load_senders, ctx.console.settings)

    def read() -> list[dict[str, Any]]:
        with lock:
            return service.queues(ctx.console.settings, senders, probe)
    try:
        return await asyncio.to_thread(read), None
    except Exception as exc:  # noqa: BLE001 - any broker failure: say so, show the database's figures
        log.info("console: RabbitMQ unreachable for the overview: %s", exc)
        return None, f"RabbitMQ is unreachable ({type(exc).__name__}): queue depths are not shown; " \
                     "everything else below comes from the database."


PAGE = Page(routes=[get("/", page), get("/overview/live", live)], nav=[NavEntry("Overview", "/", order=10)])
