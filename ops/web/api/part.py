"""The ``api`` part: a Starlette app of its own mounted at ``/api/v1``.

It answers JSON everywhere under ``/api/v1`` (an unknown path is a JSON 404, never the
console's login page), carries the console's security headers, and keeps one AMQP
connection for the process (closed with the app).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache, partial

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wanotify.ops.web.api import docs, openapi
from wanotify.ops.web.api.auth import CACHE_SECONDS, Authenticator
from wanotify.ops.web.api.errors import COMMON_HEADERS, ApiError
from wanotify.ops.web.api.routes import Api
from wanotify.ops.web.console.security import SecurityHeaders
from wanotify.ops.web.limits import Limits
from wanotify.ops.web.parts import Built, Part
from wanotify.shared import schemas
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory

BASE = openapi.BASE
# The published JSON Schemas depend on code only: rendered once.
_published_schemas = cache(schemas.published_schemas)


def check(_settings: Settings) -> None:
    """The API needs no secret of its own: its keys live in the database."""


def build(settings: Settings, limits: Limits, registry: CollectorRegistry, *,
          auth_cache_seconds: float = CACHE_SECONDS) -> Built:
    engine = make_engine(settings.database_url)  # connects on first use
    sessions = session_factory(engine)
    api = Api(settings, limits, registry, sessions, Authenticator(sessions, auth_cache_seconds))
    routes = [
        Route("/events", api.endpoint("events", api.post_event), methods=["POST"]),
        Route("/events/batch", api.endpoint("events_batch", api.post_batch), methods=["POST"]),
        Route("/messages", api.endpoint("messages", api.list_messages), methods=["GET"]),
        Route("/messages/{id:int}", api.endpoint("message", api.get_message), methods=["GET"]),
        Route("/messages/{id}", _not_a_message_id, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/docs", _docs, methods=["GET"]),
        Route("/schemas", _schemas, methods=["GET"]),
        Route("/schemas/{event_type}", _event_schema, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("wanotify.ops.web.api", "static")])),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={HTTPException: _http_error, ApiError: _api_error})  # type: ignore[dict-item]
    # ``/events/`` gets a JSON 404, not a redirect: a 307 to an absolute URL built from the
    # request points at plain http behind a TLS proxy, and an API client should fix its path.
    app.router.redirect_slashes = False
    return Built([Mount(BASE, app=app)], partial(_lifespan, api, engine))


async def _openapi(_request: Request) -> Response:
    return JSONResponse(openapi.document(), headers=COMMON_HEADERS)


async def _schemas(_request: Request) -> Response:
    return JSONResponse(_published_schemas(), headers=COMMON_HEADERS)


async def _not_a_message_id(request: Request) -> Response:
    """``/messages/abc``: say what a message id is, rather than "no such endpoint"."""
    raise ApiError(404, "not_found", f"no message {request.path_params['id']!r}: a message id is a whole number: "
                                     "GET /api/v1/messages?event_id=… lists an event's messages with theirs")


async def _event_schema(request: Request) -> Response:
    event_type = request.path_params["event_type"]
    found = _published_schemas()["events"].get(event_type)
    if found is None:
        raise ApiError(404, "not_found", f"no schema for event type {event_type!r}: GET /api/v1/schemas lists them")
    return JSONResponse(found, headers=COMMON_HEADERS)


async def _docs(_request: Request) -> Response:
    return HTMLResponse(docs.page(), headers={"Cache-Control": "no-cache"})


async def _api_error(_request: Request, exc: ApiError) -> Response:
    return exc.response()


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    codes = {404: ("not_found", "no such endpoint: see /api/v1/docs"), 405: ("method_not_allowed", "method not allowed")}
    code, message = codes.get(exc.status_code, ("http_error", str(exc.detail)))
    return ApiError(exc.status_code, code, message, headers=dict(exc.headers or {})).response()


@asynccontextmanager
async def _lifespan(api: Api, engine: Engine) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await api.publisher.close()
        engine.dispose()


PART = Part("api", f"the HTTP API at {BASE}", check, build)
