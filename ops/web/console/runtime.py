"""The console's services for one app (settings, database, templates, pages) and its request pipeline.

Every route goes through ``Console.endpoint``: load the signed session, find the user (a
removed user or a changed password ends the session), check the route's role on the
server, run the handler, save the session. The CSRF check happens before that, for every
state-changing request, in ``CsrfGuard``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from wanotify.ops.admin.users import Role, get_user
from wanotify.ops.web.console import filters
from wanotify.ops.web.console.kit import ConsoleRoute, Ctx, CurrentUser, NavEntry, Page
from wanotify.ops.web.console.security import SessionCookie, password_fingerprint
from wanotify.ops.web.console.throttle import LoginThrottle
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory
from wanotify.shared.monitoring import QueueProbe

log = logging.getLogger(__name__)
FORM_SCOPE_KEY = "wanotify.console.form"


class Console:
    def __init__(self, settings: Settings, pages: list[Page]) -> None:
        assert settings.web_secret_key, "checked by the part before it is built"
        self.settings = settings
        self.engine = make_engine(settings.database_url)  # connects on first use
        self.sessions = session_factory(self.engine)
        self.cookie = SessionCookie(settings.web_secret_key)
        self.throttle = LoginThrottle()
        self.nav: list[NavEntry] = sorted((n for p in pages for n in p.nav), key=lambda n: (n.order, n.label))
        self.templates = _environment()
        self._probe = QueueProbe(settings.amqp_url)
        self._probe_lock = threading.Lock()  # one blocking connection, used by one thread at a time

    def probe(self) -> tuple[QueueProbe, threading.Lock]:
        """The broker probe and the lock to hold while using it (from a worker thread)."""
        return self._probe, self._probe_lock

    def close(self) -> None:
        with self._probe_lock:
            self._probe.close()
        self.engine.dispose()

    def endpoint(self, route: ConsoleRoute):  # type: ignore[no-untyped-def]
        async def handle(request: Request) -> Response:
            session = self.cookie.load(request)
            ctx = Ctx(request, self, session, form=request.scope.get(FORM_SCOPE_KEY) or FormData())
            try:
                response = await self._dispatch(route, ctx)
            except OperationalError as exc:
                log.warning("console: the database is unreachable: %s", exc.orig)
                response = self.error(ctx, 503, "The database is unreachable",
                                      "PostgreSQL did not answer; this page will work again once it does.")
            self.cookie.save(response, request, ctx.session)
            return response
        return handle

    async def _dispatch(self, route: ConsoleRoute, ctx: Ctx) -> Response:
        if not route.public:
            ctx.user = await ctx.db(self.current_user, ctx.session)
            if ctx.user is None:
                return self._login_required(ctx)
            if ctx.user.role < route.role:
                return self.error(ctx, 403, "Not allowed",
                                  f"This needs the role {route.role.label}; you are {ctx.user.role.label}.")
        return await route.handler(ctx)

    @staticmethod
    def current_user(session: Session, data: dict[str, Any]) -> CurrentUser | None:
        uid = data.get("uid")
        user = get_user(session, uid) if isinstance(uid, int) else None
        if user is None or data.get("pwf") != password_fingerprint(user.password_hash):
            return None
        return CurrentUser(user.id, user.username, Role.parse(user.role))

    def _login_required(self, ctx: Ctx) -> Response:
        if ctx.request.method != "GET":
            return self.error(ctx, 403, "Not logged in", "Log in first.")
        target = "/login?next=" + quote(ctx.request.url.path + (f"?{ctx.request.url.query}" if ctx.request.url.query else ""))
        if ctx.request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    def error(self, ctx: Ctx, status: int, title: str, text: str) -> HTMLResponse:
        return self.render(ctx, "error.html", {"title": title, "text": text}, status)

    def render(self, ctx: Ctx, template: str, values: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        context = {**self._layout(ctx), **values}
        html = self.templates.get_template(template).render(context)
        return HTMLResponse(html, status_code, headers={"Cache-Control": "no-store"})

    def _layout(self, ctx: Ctx) -> dict[str, Any]:
        path = ctx.request.url.path
        role = ctx.user.role if ctx.user else None
        nav = [{"label": n.label, "path": n.path, "active": path == n.path or (n.path != "/" and path.startswith(n.path))}
               for n in self.nav if role is not None and role >= n.role]
        return {"user": ctx.user, "nav": nav, "csrf_token": ctx.session.get("csrf", ""), "path": path,
                "flashes": ctx.session.pop("flash", []), "namespace": self.settings.namespace,
                "title": "", "fragment": bool(ctx.request.headers.get("hx-request"))}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("wanotify.ops.web.console", "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(filters.FILTERS)
    env.globals.update(filters.GLOBALS)
    env.globals["ui"] = env.get_template("macros.html").make_module()  # every template and fragment has the macros
    return env
