"""The API's handlers: each parses the request, spends its tokens, calls a service, answers JSON.

``Api.endpoint`` runs every authenticated route the same way: the key (401), the handler,
and the answer to anything refused (``ApiError``) or unreachable (PostgreSQL down: 503).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wanotify.ops.admin.api_keys import KeyOwner
from wanotify.ops.web.api import services
from wanotify.ops.web.api.auth import Authenticator
from wanotify.ops.web.api.errors import COMMON_HEADERS, ApiError, invalid, retry_after
from wanotify.ops.web.api.models import BatchIn
from wanotify.ops.web.api.publishing import RETRY_AFTER_SECONDS, ApiPublisher, BrokerUnavailable
from wanotify.ops.web.api.ratelimit import RateLimiter
from wanotify.ops.web.api.validation import Checked, Checks, check_event, parse_json
from wanotify.ops.web.limits import BodyBudget, Limits, Refused, read_body
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.events import MAX_EVENT_BYTES

log = logging.getLogger(__name__)
BATCH_MAX_BYTES = 8 * 1024 * 1024
Handler = Callable[[Request, KeyOwner], Awaitable[Response]]
REFUSAL_CODES = {400: "bad_request", 408: "body_timeout", 411: "length_required", 413: "too_large", 503: "busy"}


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("wanotify_api_requests_total", "HTTP API requests by route and status",
                                ["route", "status"], registry=registry)
        self.events = Counter("wanotify_api_events_total", "Events posted to the HTTP API by outcome "
                              "(accepted, invalid, unconfirmed)", ["outcome"], registry=registry)


class Api:
    def __init__(self, settings: Settings, limits: Limits, registry: CollectorRegistry, sessions: sessionmaker[Session],
                 auth: Authenticator) -> None:
        self.sessions = sessions
        self.auth = auth
        self.limiter = RateLimiter(settings.api_rate_limit, settings.api_rate_burst)
        self.publisher = ApiPublisher(settings)
        self.known_types = services.KnownTypes()
        self.region = settings.default_region
        self.event_limits = replace(limits, max_body_bytes=MAX_EVENT_BYTES)
        self.batch_limits = replace(limits, max_body_bytes=BATCH_MAX_BYTES)
        self.budget = BodyBudget(limits.body_budget_bytes)
        self.metrics = ApiMetrics(registry)

    def endpoint(self, route: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                owner = await self.auth.owner(request.headers.get("authorization"))
                response = await handler(request, owner)
            except ApiError as refusal:
                response = refusal.response()
            except OperationalError as exc:
                log.warning("api: the database is unreachable: %s", exc.orig)
                response = ApiError(503, "database_unavailable", "PostgreSQL did not answer; try again later",
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)}).response()
            self.metrics.requests.labels(route, str(response.status_code)).inc()
            return response
        return handle

    async def post_event(self, request: Request, owner: KeyOwner) -> Response:
        self._spend(owner, 1)
        checked = check_event(parse_json(await self._body(request, self.event_limits)), await self._checks())
        if checked.errors:
            self.metrics.events.labels("invalid").inc()
            raise invalid(checked.errors)
        assert checked.event is not None
        try:
            event_id = await self.publisher.publish(checked.event)
        except BrokerUnavailable:
            self.metrics.events.labels("unconfirmed").inc()
            # The event may have reached the broker before its confirm was lost: the client needs
            # the id (it may have sent none) to post it again without a second message.
            raise _broker_unavailable("the broker did not confirm the event, so it may or may not have been "
                                      "published: post it again with this event_id, which is never sent twice",
                                      event_id=checked.event.event_id) from None
        self.metrics.events.labels("accepted").inc()
        log.info("api: event %s (%s) accepted from key %s", event_id, checked.event.event_type, owner.name)
        return _json({"event_id": event_id}, 202)

    async def post_batch(self, request: Request, owner: KeyOwner) -> Response:
        try:
            batch = BatchIn.model_validate(parse_json(await self._body(request, self.batch_limits)))
        except ValidationError as exc:
            raise invalid([{"path": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()],
                          "the batch is not valid; nothing was published") from None
        self._spend(owner, len(batch.events))
        checks = await self._checks()
        checked = [check_event(raw, checks, f"events.{i}") for i, raw in enumerate(batch.events)]
        errors = [e for c in checked for e in c.errors]
        if errors:
            self.metrics.events.labels("invalid").inc(len(batch.events))
            bad = sum(bool(c.errors) for c in checked)
            raise invalid(errors, f"{bad} of {len(checked)} events are not valid; nothing was published")
        return await self._publish_batch(checked, owner)

    async def _publish_batch(self, checked: list[Checked], owner: KeyOwner) -> Response:
        events = [c.event for c in checked if c.event is not None]
        outcomes = await asyncio.gather(*(self.publisher.publish(e) for e in events), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, BrokerUnavailable):
                raise outcome
        items = [{"index": i, "event_id": e.event_id, "status": "failed" if isinstance(o, BrokerUnavailable) else "accepted"}
                 for i, (e, o) in enumerate(zip(events, outcomes, strict=True))]
        failed = sum(item["status"] == "failed" for item in items)
        self.metrics.events.labels("accepted").inc(len(items) - failed)
        self.metrics.events.labels("unconfirmed").inc(failed)
        if failed:
            raise _broker_unavailable(f"the broker did not confirm {failed} of {len(items)} events: post the batch "
                                      "again with the event_id of each event listed here, so that none is sent "
                                      "twice", events=items)
        log.info("api: batch of %d events accepted from key %s", len(items), owner.name)
        return _json({"events": items}, 202)

    async def list_messages(self, request: Request, owner: KeyOwner) -> Response:
        self._spend(owner, 1)
        raw = request.query_params.get("event_id", "").strip()
        if not raw:
            raise invalid([{"path": "event_id", "message": "required: the event_id the event was posted with"}],
                          "which event? give ?event_id=")
        try:
            event_id = uuid.UUID(raw)
        except ValueError:
            raise invalid([{"path": "event_id", "message": "not a UUID"}], "event_id is not a UUID") from None
        # An event may be parked for one rule's template and still have the other rules' messages.
        messages = await self._db(services.event_messages, event_id)
        parked = await self._db(services.event_parked, event_id)
        return _json({"messages": messages} | ({"parked": parked} if parked else {}))

    async def get_message(self, request: Request, owner: KeyOwner) -> Response:
        self._spend(owner, 1)
        message_id = int(request.path_params["id"])
        found = await self._db(services.message_status, message_id)
        if found is None:
            raise ApiError(404, "not_found", f"there is no message {message_id}")
        return _json(found)

    def _spend(self, owner: KeyOwner, cost: int) -> None:
        wait = self.limiter.take(owner.id, cost)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"the key {owner.name!r} is over its rate limit; try again in "
                           f"{wait:.1f} s", headers={"Retry-After": retry_after(wait)})

    async def _body(self, request: Request, limits: Limits) -> bytes:
        try:
            with self.budget.lease() as lease:
                return await read_body(request, limits, lease)
        except Refused as refusal:
            raise ApiError(refusal.status, REFUSAL_CODES.get(refusal.status, "refused"), refusal.reason,
                           headers={"Connection": "close"}) from None

    async def _checks(self) -> Checks:
        types = self.known_types.fresh()
        if types is None:
            types = await self._db(services.rule_event_types)
            self.known_types.remember(types)
        return Checks(types, self.region, datetime.now(UTC))

    async def _db(self, service: Callable[..., Any], *args: Any) -> Any:
        def run() -> Any:
            with transaction(self.sessions) as session:
                return service(session, *args)
        return await asyncio.to_thread(run)


def _broker_unavailable(message: str, **extra: Any) -> ApiError:
    return ApiError(503, "broker_unavailable", message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, extra=extra)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers=COMMON_HEADERS)
