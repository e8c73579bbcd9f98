"""The ``webhook`` part: WhatsApp Cloud API webhooks at ``/webhooks/whatsapp``.

GET is the subscription handshake; POST carries receipts, the users' own messages (their
window, their opt-outs) and what Meta says of our templates and numbers (shared/receipts.py
and shared/meta_events.py apply them). The order of checks on a POST is
the cheap refusals first: no signature header (401) or a malformed one (403) before any
body is read; then the body within the limits (411/413/408/503); then the HMAC over the raw
bytes, before any parsing (403); then the receipts service (400 not JSON, 503 database
down, else 200). Every refusal closes the connection, so an unread body goes with it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wanotify.ops.web.limits import BodyBudget, Limits, Refused, read_body
from wanotify.ops.web.metrics import WebhookMetrics
from wanotify.ops.web.parts import Built, Part
from wanotify.ops.web.signatures import SIGNATURE_HEADER, signature_matches, token_matches, well_formed
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory, transaction
from wanotify.shared.errors import ConfigError, TransientError
from wanotify.shared.meta_events import prune_keys
from wanotify.shared.meta_state import refresh_metrics
from wanotify.shared.receipts import PayloadNotJson, prune_payloads, receive_payload

log = logging.getLogger(__name__)
PATH = "/webhooks/whatsapp"
PRUNE_EVERY_SECONDS = 3600.0
# How often the Meta gauges are read again from the database (another process may change it:
# `templates sync`, a second web server).
META_REFRESH_SECONDS = 15.0
# What makes the Meta gauges worth reading again at once.
STATE_CHANGES = frozenset({"template", "account"})


def check(settings: Settings) -> None:
    if not settings.whatsapp.verify_token or not settings.whatsapp.app_secret:
        raise ConfigError("the webhook needs WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET: set both, "
                          "or serve other parts with --only")


def build(settings: Settings, limits: Limits, registry: CollectorRegistry) -> Built:
    hook = Webhook(settings, limits, WebhookMetrics(registry))
    return Built([Route(PATH, hook.handshake, methods=["GET"]), Route(PATH, hook.receive, methods=["POST"])],
                 hook.lifespan)


PART = Part("webhook", f"WhatsApp status webhooks at {PATH}", check, build)


class Webhook:
    def __init__(self, settings: Settings, limits: Limits, metrics: WebhookMetrics) -> None:
        check(settings)
        self.metrics = metrics
        self.verify_token = settings.whatsapp.verify_token or ""
        self.app_secret = settings.whatsapp.app_secret or ""
        self.limits = limits
        self.budget = BodyBudget(limits.body_budget_bytes)
        self.retention = timedelta(days=settings.webhook_retention_days)
        self.opt_out_keywords = settings.opt_out_keywords
        # One reading of the Meta gauges at a time: the reading after a payload must not be
        # overwritten by a periodic one that read the database before the payload's commit.
        self._meta_lock = threading.Lock()
        self.engine = make_engine(settings.database_url)  # connects on first use
        self.sessions = session_factory(self.engine)

    async def handshake(self, request: Request) -> Response:
        query = request.query_params
        if query.get("hub.mode") != "subscribe" or not token_matches(self.verify_token, query.get("hub.verify_token", "")):
            return refuse(Refused(403, "verification failed"))
        if "hub.challenge" not in query:
            return refuse(Refused(400, "hub.challenge missing"))
        log.info("webhook subscription handshake answered")
        return PlainTextResponse(query["hub.challenge"])

    async def receive(self, request: Request) -> Response:
        try:
            with self.budget.lease() as lease:
                signature = _signature_header(request)
                body = await read_body(request, self.limits, lease)
                if not signature_matches(self.app_secret, body, signature):
                    raise Refused(403, "signature does not match the body")
                reply = await self._apply(body)
        except Refused as refusal:
            reply = refuse(refusal)
        self.metrics.requests.labels(str(reply.status_code)).inc()
        return reply

    async def _apply(self, body: bytes) -> Response:
        try:
            result = await asyncio.to_thread(receive_payload, self.sessions, body, self.opt_out_keywords)
        except PayloadNotJson:
            raise Refused(400, "the body is not JSON") from None
        except TransientError as exc:
            log.warning("could not record a webhook payload; Meta will retry it: %s", exc)
            raise Refused(503, "receipts cannot be recorded now; try again later") from None
        log.info("webhook payload %s%s: %s", result.payload_id, "" if result.new else " (again)",
                 result.counts | result.events)
        for outcome, n in result.counts.items():
            self.metrics.receipts.labels(outcome).inc(n)
        for outcome, n in result.events.items():
            self.metrics.events.labels(outcome).inc(n)
        if STATE_CHANGES & set(result.events):
            await self._refresh_meta()
        return JSONResponse({"payload": result.payload_id, "receipts": result.counts, "events": result.events})

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self._prune_forever()), asyncio.create_task(self._refresh_meta_forever())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            self.engine.dispose()

    async def _prune_forever(self) -> None:
        while True:
            try:
                gone = await asyncio.to_thread(self._prune)
                if gone:
                    log.info("pruned %d webhook payloads older than %s", gone, self.retention)
            except Exception as exc:  # noqa: BLE001 - the database may be down: try again next time
                log.warning("could not prune old webhook payloads: %s", exc)
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    def _prune(self) -> int:
        with transaction(self.sessions) as session:
            prune_keys(session, self.retention)
            return prune_payloads(session, self.retention)

    async def _refresh_meta_forever(self) -> None:
        while True:
            await self._refresh_meta()
            await asyncio.sleep(META_REFRESH_SECONDS)

    async def _refresh_meta(self) -> None:
        try:
            await asyncio.to_thread(self._read_meta_state)
        except Exception as exc:  # noqa: BLE001 - the database may be down: the gauges keep their values
            log.debug("could not refresh the Meta gauges: %s", exc)

    def _read_meta_state(self) -> None:
        with self._meta_lock, transaction(self.sessions) as session:
            refresh_metrics(self.metrics.meta, session)


def _signature_header(request: Request) -> str:
    """The signature header, checked before any body is read: 401 if missing, 403 if malformed."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is None:
        raise Refused(401, f"{SIGNATURE_HEADER} missing")
    if not well_formed(signature):
        raise Refused(403, f"{SIGNATURE_HEADER} is not sha256=<64 hex digits>")
    return signature


def refuse(refusal: Refused) -> Response:
    """One line saying why, and the connection closed, so an unread body cannot linger."""
    headers = {"Connection": "close"}
    if refusal.status == 401:
        headers["WWW-Authenticate"] = 'HubSignature realm="whatsapp-webhook"'
    if refusal.status >= 500:
        headers["Retry-After"] = "60"
    log.info("webhook request refused: %s %s", refusal.status, refusal.reason)
    return PlainTextResponse(refusal.reason + "\n", refusal.status, headers=headers)


def at_root(app: ASGIApp) -> ASGIApp:
    """``app`` also answering the webhook at ``/``, where the old ``wanotify webhook`` answered it."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/":
            scope = {**scope, "path": PATH, "raw_path": PATH.encode()}
        await app(scope, receive, send)
    return wrapped
