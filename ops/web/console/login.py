"""Logging in and out. The only console pages served without a login are the login form and its POST."""

from __future__ import annotations

import time

from starlette.responses import Response

from wanotify.ops.admin.users import Role, authenticate
from wanotify.ops.web.console.kit import ConsoleRoute, Ctx, Page, post
from wanotify.ops.web.console.security import new_session, password_fingerprint


async def form(ctx: Ctx) -> Response:
    if ctx.session.get("uid") is not None:
        user = await ctx.db(ctx.console.current_user, ctx.session)
        if user is not None:
            return ctx.redirect(_safe_next(ctx.request.query_params.get("next")))
    return ctx.render("login.html", title="Log in", next=_safe_next(ctx.request.query_params.get("next")),
                      username="", error=None)


async def submit(ctx: Ctx) -> Response:
    username = str(ctx.form.get("username", "")).strip()
    password = str(ctx.form.get("password", ""))
    target = _safe_next(str(ctx.form.get("next", "/")))
    address = ctx.request.client.host if ctx.request.client else "unknown"
    wait = ctx.console.throttle.wait_seconds(username, address)
    if wait > 0:
        return _again(ctx, 429, username, target, f"Too many failed logins: try again in {wait:.0f} s.")
    user = await ctx.db(authenticate, username, password) if username and password else None
    if user is None:
        ctx.console.throttle.failed(username, address)
        return _again(ctx, 401, username, target, "Wrong user name or password.")
    ctx.console.throttle.succeeded(username)
    ctx.session.clear()  # a new session, and a new CSRF token, at every login
    ctx.session.update(new_session(uid=user.id, pwf=password_fingerprint(user.password_hash), login_at=time.time()))
    return ctx.redirect(target)


async def logout(ctx: Ctx) -> Response:
    ctx.session.clear()
    ctx.session.update(new_session())
    return ctx.redirect("/login")


def _again(ctx: Ctx, status: int, username: str, target: str, error: str) -> Response:
    return ctx.render("login.html", status, title="Log in", next=target, username=username, error=error)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://…`` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


PAGE = Page(routes=[
    ConsoleRoute("/login", form, ("GET",), Role.VIEWER, public=True),
    ConsoleRoute("/login", submit, ("POST",), Role.VIEWER, public=True),
    post("/logout", logout, role=Role.VIEWER),
])
