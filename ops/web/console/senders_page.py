"""Senders: the WhatsApp numbers, their state, pace and load. Viewers read; operators pause and
resume a number; admins add, change, disable and enable numbers. The same service functions as
``wanotify senders``, each change in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from starlette.responses import Response

from wanotify.ops.admin import pausing
from wanotify.ops.admin.dead_letters import parse_age
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.admin.senders import (
    SenderOptions,
    add_sender,
    disable_sender,
    list_senders,
    parse_warmup,
    set_sender,
    show_sender,
)
from wanotify.ops.admin.users import Role
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post
from wanotify.shared.senders import PROVIDER_KINDS

TEXT_FIELDS = ("phone_number_id", "token_env", "api_key_env", "sender_number", "base_url")
NUMBER_FIELDS: dict[str, Callable[[str], Any]] = {"gap": float, "gap_min": float, "gap_max": float, "daily_limit": int,
                                                  "daily_reserve": int}


# A state's badge, in the colours the other pages use for the same meaning.
BADGES = {"active": "sent", "paused": "dead", "disabled": "cancelled"}


def _with_gap_text(row: dict[str, Any]) -> dict[str, Any]:
    gap = row["gap_seconds"]
    return row | {"gap_text": f"{gap[0]:g}–{gap[1]:g}" if isinstance(gap, list) else f"{gap:g}"}


async def listing(ctx: Ctx) -> Response:
    rows = [_with_gap_text(r) for r in await ctx.db(list_senders, ctx.console.settings)]
    return ctx.render("senders.html", title="Senders", rows=rows, providers=PROVIDER_KINDS, badges=BADGES, s=None,
                      form_action="/senders/add")


async def detail(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    try:
        view = await ctx.db(show_sender, ctx.console.settings, name)
    except ActionRefused as exc:
        return ctx.console.error(ctx, 404, "No such sender", str(exc))
    return ctx.render("sender.html", title=f"Sender {name}", s=_with_gap_text(view), providers=PROVIDER_KINDS,
                      badges=BADGES, form_action=f"/senders/{name}/set")


def _options(ctx: Ctx, *, enable: bool = False) -> SenderOptions:
    """The form's filled fields as options (an empty field leaves a value as it is)."""
    values: dict[str, Any] = {}
    provider = str(ctx.form.get("provider") or "").strip()
    if provider:
        values["provider"] = provider
    for key in TEXT_FIELDS:
        raw = str(ctx.form.get(key) or "").strip()
        if raw:
            values[key] = raw
    for key, kind in NUMBER_FIELDS.items():
        raw = str(ctx.form.get(key) or "").strip()
        if raw:
            try:
                values[key] = kind(raw)
            except ValueError:
                raise ActionRefused(f"{key.replace('_', ' ')}: {raw!r} is not a number") from None
    warmup = str(ctx.form.get("warmup") or "").strip()
    if warmup:
        values["warmup"] = parse_warmup(warmup)
    return SenderOptions(**values, enable=enable)


async def _act(ctx: Ctx, back: str, act: Callable[[], Any], done: Callable[[Any], str]) -> Response:
    """Run one action; its refusal is shown inline, as the CLI's ``Error:`` line."""
    try:
        result = await act()
    except ActionRefused as exc:
        ctx.flash(str(exc), "error")
    else:
        ctx.flash(done(result), "ok")
        for warning in (result or {}).get("warnings", []) if isinstance(result, dict) else []:
            ctx.flash(f"Warning: {warning}", "warn")
    return ctx.redirect(back)


async def add(ctx: Ctx) -> Response:
    name = str(ctx.form.get("name") or "").strip()
    return await _act(ctx, "/senders", lambda: ctx.db(add_sender, ctx.actor, name, _options(ctx)),
                      lambda _: f"Added sender {name}.")


async def change(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    return await _act(ctx, f"/senders/{name}", lambda: ctx.db(set_sender, ctx.actor, name, _options(ctx)),
                      lambda r: f"Changed {', '.join(r['changed'])}.")


async def enable(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    return await _act(ctx, "/senders", lambda: ctx.db(set_sender, ctx.actor, name, SenderOptions(enable=True)),
                      lambda _: f"Sender {name} is active again: new recipients may be routed to it.")


async def disable(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    return await _act(ctx, "/senders", lambda: ctx.db(disable_sender, ctx.actor, name), lambda r: (
        f"Sender {name} is disabled: its recipients move to another sender for their new messages."
        + (f" {r['waiting']} message(s) still wait for it: `wanotify senders drain {name} --to OTHER` moves them."
           if r["waiting"] else "")))


async def pause(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    raw = str(ctx.form.get("duration") or "").strip()
    reason = str(ctx.form.get("reason") or "").strip() or None

    async def act() -> pausing.Pause:
        try:
            span: timedelta | None = parse_age(raw) if raw else None
        except ValueError as exc:
            raise ActionRefused(str(exc)) from None
        return await ctx.db(pausing.pause, ctx.console.settings.namespace, ctx.actor, reason, name, duration=span)
    return await _act(ctx, "/senders", act, lambda held: f"Sender {name} paused" + (
        f" until {held.until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC." if held.until else " until resumed."))


async def resume(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    return await _act(ctx, "/senders", lambda: ctx.db(pausing.resume, ctx.console.settings.namespace, ctx.actor, name),
                      lambda lifted: f"Sender {name} resumed." if lifted else f"Sender {name} was not paused.")


ADMIN = Role.ADMIN
PAGE = Page(
    routes=[get("/senders", listing), get("/senders/{name}", detail),
            post("/senders/add", add, role=ADMIN), post("/senders/{name}/set", change, role=ADMIN),
            post("/senders/{name}/disable", disable, role=ADMIN), post("/senders/{name}/enable", enable, role=ADMIN),
            post("/senders/{name}/pause", pause), post("/senders/{name}/resume", resume)],
    nav=[NavEntry("Senders", "/senders", order=55)],
)
