"""The ``console`` part: the admin console at ``/``, a Starlette app of its own mounted last.

Its pages are found, not listed: every module of this package that defines ``PAGE`` (a
``kit.Page``) is one (see the package docstring). The console has its own middleware — the
security headers on everything it serves, the CSRF check before routing — so the other
parts (webhook, api) are untouched by either.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import wanotify.ops.web.console as package
from wanotify.ops.web.console.csrf import CsrfGuard
from wanotify.ops.web.console.kit import Page
from wanotify.ops.web.console.runtime import Console
from wanotify.ops.web.console.security import SecurityHeaders
from wanotify.ops.web.limits import Limits
from wanotify.ops.web.parts import Built, Part
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError

MIN_SECRET_CHARS = 32


def check(settings: Settings) -> None:
    key = settings.web_secret_key
    if not key:
        raise ConfigError("the console needs WEB_SECRET_KEY (signs sessions): set it to a long random string, e.g. "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`, or serve other parts with --only")
    if len(key) < MIN_SECRET_CHARS:
        raise ConfigError(f"WEB_SECRET_KEY is too short ({len(key)} characters): use at least {MIN_SECRET_CHARS} "
                          "random characters")


def pages() -> list[Page]:
    """Every ``PAGE`` in this package's modules, in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        page = getattr(module, "PAGE", None)
        if isinstance(page, Page):
            found.append(page)
    return found


def build(settings: Settings, _limits: Limits, _registry: CollectorRegistry) -> Built:
    check(settings)
    found = pages()
    console = Console(settings, found)
    routes: list[BaseRoute] = [Mount("/static", StaticFiles(packages=[("wanotify.ops.web.console", "static")]), name="static")]
    routes += [Route(r.path, console.endpoint(r), methods=list(r.methods)) for p in found for r in p.routes]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders),
                                               Middleware(CsrfGuard, cookie=console.cookie)])
    return Built([Mount("", app=app)], partial(_lifespan, console))


@asynccontextmanager
async def _lifespan(console: Console) -> AsyncIterator[None]:
    try:
        yield
    finally:
        console.close()


PART = Part("console", "the admin console at /", check, build)
