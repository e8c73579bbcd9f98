"""What a console page module uses: ``Page``, ``NavEntry``, ``get``/``post`` and the ``Ctx`` a handler gets.

See the package docstring (``ops/web/console/__init__.py``) for how a page module plugs in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from wanotify.ops.admin import audit
from wanotify.ops.admin.users import Role
from wanotify.shared.db.engine import transaction

# The largest id a BIGINT column holds: a larger one is no id, not a database error.
BIGINT_MAX = 2**63 - 1


def whole_number(raw: str | None, most: int = BIGINT_MAX) -> int | None:
    """``raw`` as a whole number from 0 to ``most`` (ASCII digits only: "²" is a digit to
    ``str.isdigit`` but not to ``int``), else None."""
    if not raw or not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(most)):
        return None
    value = int(raw)
    return value if value <= most else None

if TYPE_CHECKING:
    from wanotify.ops.web.console.runtime import Console

P = ParamSpec("P")
T = TypeVar("T")
Handler = Callable[["Ctx"], Awaitable[Response]]


@dataclass(frozen=True)
class ConsoleRoute:
    path: str
    handler: Handler
    methods: tuple[str, ...]
    role: Role  # the least role that may use it; checked on the server before the handler runs
    public: bool = False  # served without a login (the login page only)


def get(path: str, handler: Handler, *, role: Role = Role.VIEWER) -> ConsoleRoute:
    """A page or fragment; viewers may read by default."""
    return ConsoleRoute(path, handler, ("GET",), role)


def post(path: str, handler: Handler, *, role: Role = Role.OPERATOR) -> ConsoleRoute:
    """An action: the CSRF token is checked before the handler runs; operators and up by default."""
    return ConsoleRoute(path, handler, ("POST",), role)


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str
    role: Role = Role.VIEWER  # shown to this role and the ones above it
    order: int = 50  # left to right: overview 10, messages 20, dead letters 30, … audit 90


@dataclass(frozen=True)
class Page:
    """What a page module exports as ``PAGE``."""

    routes: Sequence[ConsoleRoute]
    nav: Sequence[NavEntry] = ()


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    role: Role

    @property
    def can_act(self) -> bool:
        return self.role >= Role.OPERATOR

    @property
    def is_admin(self) -> bool:
        return self.role >= Role.ADMIN


@dataclass
class Ctx:
    """One request as a handler sees it: the user, the parsed form, and the services."""

    request: Request
    console: Console
    session: dict[str, Any]  # the signed cookie's data; changes are saved with the response
    user: CurrentUser | None = None  # None only on public routes
    form: FormData = field(default_factory=FormData)  # a POST's fields, CSRF already checked

    @property
    def actor(self) -> str:
        """The audit log's name for whoever acts: the console user's name."""
        return self.user.name if self.user else "anonymous"

    async def db(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(session, *args, **kwargs)`` in one transaction, on a worker thread (the loop stays free)."""
        def run() -> T:
            with transaction(self.console.sessions) as session:
                return fn(session, *args, **kwargs)
        return await asyncio.to_thread(run)

    async def audit(self, action: str, *, target: dict[str, Any] | None = None, count: int | None = None,
                    detail: str | None = None) -> None:
        """Records an action done outside a database transaction (a broker action) in the audit log.

        An action done in the database should call ``wanotify.ops.admin.audit.record`` inside its own
        transaction instead (through ``ctx.db``), so the entry commits with it.
        """
        await self.db(audit.record, self.actor, action, target=target, count=count, detail=detail)

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        """The template with ``values`` and the layout's own (user, nav, csrf_token, flashes, …)."""
        return self.console.render(self, template, values, status_code)

    def flash(self, text: str, kind: str = "info") -> None:
        """A one-line note shown on the next page rendered (after a redirect)."""
        self.session.setdefault("flash", []).append([kind, text])

    def redirect(self, path: str) -> Response:
        """303 See Other: the browser follows with GET (post/redirect/get), htmx with HX-Redirect."""
        if self.request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": path})
        return RedirectResponse(path, status_code=303)
