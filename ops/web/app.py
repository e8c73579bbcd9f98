"""The web app's factory and its parts (console, api, webhook: whichever exist).

``create_app(settings, parts)`` builds one Starlette app serving the chosen parts and
``/healthz``. It can be served alone (``wanotify run web``) or mounted in another ASGI app;
mounted, the host app should run its lifespan (``app.router.lifespan_context``) for the
parts' background work (the webhook's pruning of old payloads) — requests are served either
way. A new part is a module exposing a ``Part`` and one line in ``PARTS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wanotify.ops.web import webhook
from wanotify.ops.web.api import part as api
from wanotify.ops.web.console import part as console
from wanotify.ops.web.limits import Limits
from wanotify.ops.web.parts import Built, Part
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError

# In routing order: a part serving "/" (the console) must come last.
PARTS: dict[str, Part] = {part.name: part for part in (webhook.PART, api.PART, console.PART)}


def select_parts(only: str | None) -> tuple[str, ...]:
    """The parts named in ``--only`` (comma-separated), or every part when it is not given."""
    if only is None:
        return tuple(PARTS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if unknown or not names:
        given = f"unknown part(s) {', '.join(map(repr, unknown))}" if unknown else "no part given"
        raise ConfigError(f"--only: {given}; available parts: {', '.join(PARTS)}")
    return tuple(name for name in PARTS if name in names)


def check_parts(settings: Settings, parts: Sequence[str]) -> None:
    """Raises ConfigError when one of ``parts`` cannot be served (a missing secret)."""
    for name in parts:
        PARTS[name].check(settings)


def create_app(settings: Settings, parts: Sequence[str] | None = None, limits: Limits | None = None,
               registry: CollectorRegistry | None = None) -> Starlette:
    """The app serving ``parts`` (default: all); its metrics go to ``registry`` when given."""
    names = select_parts(None) if parts is None else tuple(parts)
    check_parts(settings, names)
    limits = limits or Limits.from_settings(settings)
    registry = registry if registry is not None else CollectorRegistry()
    built = [PARTS[name].build(settings, limits, registry) for name in names]
    routes = [Route("/healthz", _healthz(names), methods=["GET"])] + [r for b in built for r in b.routes]
    return Starlette(routes=routes, lifespan=_lifespan(built))


def _healthz(names: tuple[str, ...]) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "parts": list(names)})
    return healthz


def _lifespan(built: list[Built]) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for part in built:
                if part.lifespan is not None:
                    await stack.enter_async_context(part.lifespan())
            yield
    return lifespan
