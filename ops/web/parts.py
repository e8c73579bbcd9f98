"""What a part of the web app is: routes, an optional lifespan, and what it needs to start."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute

from wanotify.ops.web.limits import Limits
from wanotify.shared.config import Settings


@dataclass(frozen=True)
class Built:
    """A part made for one app: its routes and what runs while the app runs (background work)."""

    routes: list[BaseRoute]
    lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None


@dataclass(frozen=True)
class Part:
    name: str
    summary: str
    # Raises ConfigError when the part cannot be served with these settings (a missing secret).
    check: Callable[[Settings], None]
    build: Callable[[Settings, Limits, CollectorRegistry], Built]
