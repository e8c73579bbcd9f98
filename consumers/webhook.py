"""The WhatsApp Cloud API webhook: verification handshake and status receipts.

``GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=X`` echoes X when T matches
WHATSAPP_VERIFY_TOKEN (403 otherwise). ``POST`` bodies must carry
``X-Hub-Signature-256: sha256=<HMAC-SHA256(raw body, WHATSAPP_APP_SECRET)>``, compared in
constant time (401 otherwise); each ``entry[].changes[].value.statuses[]`` item is applied
with ``apply_receipt``. Valid but uninteresting payloads are acknowledged with 200, because
Meta retries anything else and eventually disables the subscription.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from sqlalchemy.orm import Session, sessionmaker

from shared.db.engine import transaction
from shared.receipts import apply_receipt

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header.strip())


def statuses(payload: Any) -> Iterator[dict[str, Any]]:
    """Every status item of a webhook payload, skipping anything malformed."""
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        for change in entry.get("changes", []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            for item in value.get("statuses", []) if isinstance(value, dict) else []:
                if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("status"), str):
                    yield item


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], verify_token: str, app_secret: str,
                 sessions: sessionmaker[Session]) -> None:
        super().__init__(address, _Handler)
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.sessions = sessions


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _reply(self, status: int, body: str = "") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token, self.server.verify_token):
            self._reply(200, query.get("hub.challenge", ""))
        else:
            self._reply(403, "verification failed")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, "too large")
            return
        body = self.rfile.read(length)
        if not signature_ok(self.server.app_secret, body, self.headers.get("X-Hub-Signature-256")):
            self._reply(401, "bad signature")
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._reply(400, "not JSON")
            return
        try:
            with transaction(self.server.sessions) as session:
                results = [apply_receipt(session, s["id"], s["status"], _error(s)) for s in statuses(payload)]
        except Exception:
            log.exception("could not record receipts; the provider will retry")
            self._reply(503, "try again")
            return
        log.info("receipts: %s", {r: results.count(r) for r in set(results)})
        self._reply(200, "ok")


def _error(item: dict[str, Any]) -> str | None:
    errors = item.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return f"({errors[0].get('code')}) {errors[0].get('title') or errors[0].get('message') or ''}".strip()
    return None
