"""Request handling: route, validate, decide success or injected failure, record, answer."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from wanotify.ops.fake_provider import replies
from wanotify.ops.fake_provider.cloud_rules import TemplateMessage, parse_template
from wanotify.ops.fake_provider.control import handle_control
from wanotify.ops.fake_provider.replies import Reply

if TYPE_CHECKING:
    from wanotify.ops.fake_provider.server import FakeHTTPServer

CLOUD_PATH = re.compile(r"^/[^/]+/[^/]+/messages/?$")
GATEWAY_PATH = "/send-message"
GATEWAY_KEY_FIELDS = ("api_key", "token", "key")
GATEWAY_TO_FIELDS = ("number", "phone", "target", "to")
GATEWAY_TEXT_FIELDS = ("message", "text")


@dataclass(frozen=True)
class Incoming:
    """The parts of a send request the fake cares about."""

    to: str
    body: str
    credential: str
    sender: str | None = None
    template: TemplateMessage | None = None  # a Cloud API template message (``body`` is then empty)


class FakeHandler(BaseHTTPRequestHandler):
    """One connection; keep-alive, so a pooled client reuses it like it would a real API."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the body waits for the
    # client's delayed ACK, and every call would take ~40 ms.
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection gives its thread back after a minute
    server: FakeHTTPServer

    # The arrival time is taken first, before the body is read: benchmarks measure the
    # gap between sends, and body parsing must not blur it.
    def do_GET(self) -> None:
        self._dispatch(time.time())

    def do_POST(self) -> None:
        self._dispatch(time.time())

    def do_DELETE(self) -> None:
        self._dispatch(time.time())

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the CLI prints its own summary."""

    def _dispatch(self, arrived: float) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        if parts.path.startswith("/_fake/"):
            self._send(handle_control(self.server.state, self.command, parts.path, raw))
        elif self.command == "POST" and CLOUD_PATH.match(parts.path):
            self._handle_message(arrived, "meta", parse_cloud(self.headers, raw))
        elif parts.path == GATEWAY_PATH and self.command in ("GET", "POST"):
            self._handle_message(arrived, "gateway", parse_gateway(self.headers, parts.query, raw))
        else:
            self._send(replies.not_found(parts.path))

    def _handle_message(self, arrived: float, route: str, incoming: Incoming | Reply) -> None:
        mode = None
        if isinstance(incoming, Reply):  # malformed: answered as the real API would, never injected
            reply = incoming
        else:
            refusal = self.server.state.rules.refusal(incoming.to, incoming.template) if route == "meta" else None
            mode = None if refusal else self.server.state.next_failure()
            reply = refusal or _decide(route, incoming, mode)
        self._record(arrived, route, incoming, reply)
        # Recorded before any sleep, so a test sees the call as soon as its client gives up.
        delay = self.server.timeout_sleep if mode == "timeout" else self.server.latency
        if delay > 0:
            self.server.stopping.wait(delay)
        self._send(reply)

    def _record(self, arrived: float, route: str, incoming: Incoming | Reply, reply: Reply) -> None:
        parsed = incoming if isinstance(incoming, Incoming) else None
        template = parsed.template if parsed else None
        call = {
            "t": arrived,
            "route": route,
            "method": self.command,
            "path": urlsplit(self.path).path,
            "to": parsed.to if parsed else None,
            "body": self.server.state.rules.text_of(template) if template else parsed.body if parsed else None,
            "sender": parsed.sender if parsed else None,
            "credential": parsed.credential if parsed else None,
            "outcome": reply.outcome,
            "status": reply.status,
            "message_id": reply.message_id,
            "error_code": _meta_error_code(reply),
            # What kind of message it was, and for a template what filled it.
            "kind": None if parsed is None else "template" if template else "text",
            "template": template.name if template else None,
            "language": template.language if template else None,
            "params": template.params if template else None,
        }
        self.server.announce(self.server.state.record(call))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped waiting (timeout mode does this on purpose).
            self.close_connection = True
        if self.server.stopping.is_set():
            self.close_connection = True


def _meta_error_code(reply: Reply) -> int | None:
    """The Cloud API ``error.code`` of a refusal (None for a success or a gateway answer)."""
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _decide(route: str, incoming: Incoming, mode: str | None) -> Reply:
    if route == "meta":
        return replies.cloud_failure(mode) if mode else replies.cloud_success(incoming.to)
    return replies.gateway_failure(mode) if mode else replies.gateway_success()


def bearer_token(authorization: str | None) -> str:
    """The token from ``Authorization: Bearer <token>`` ("" if absent)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def parse_cloud(headers: Message, raw: bytes) -> Incoming | Reply:
    """Check a Cloud API text or template request; a 400 code 100 reply if it is malformed."""
    token = bearer_token(headers.get("Authorization"))
    if not token:
        return replies.cloud_bad_request("missing bearer token")
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        return replies.cloud_bad_request("body is not JSON")
    if not isinstance(data, dict):
        return replies.cloud_bad_request("body must be a JSON object")
    if data.get("messaging_product") != "whatsapp":
        return replies.cloud_bad_request("messaging_product must be 'whatsapp'")
    to = data.get("to")
    if not isinstance(to, str) or not to:
        return replies.cloud_bad_request("'to' is required")
    if data.get("type") == "template":
        template = parse_template(data)
        return template if isinstance(template, Reply) else Incoming(to=to, body="", credential=token,
                                                                       template=template)
    text = data.get("text")
    body = text.get("body") if isinstance(text, dict) else None
    if not isinstance(body, str) or not body:
        return replies.cloud_bad_request("'text.body' is required")
    return Incoming(to=to, body=body, credential=token)


def parse_gateway(headers: Message, query: str, raw: bytes) -> Incoming | Reply:
    """Read an MPWA-style request from the query string plus a form or JSON body."""
    fields = _last_values(parse_qs(query, keep_blank_values=True))
    if raw:
        body_fields = _body_fields(headers.get("Content-Type") or "", raw)
        if body_fields is None:
            return replies.gateway_error(400, "Invalid request body")
        fields.update(body_fields)
    authorization = headers.get("Authorization") or ""
    credential = _first(fields, GATEWAY_KEY_FIELDS) or bearer_token(authorization) or authorization.strip()
    if not credential:
        return replies.gateway_error(401, "Invalid API key")
    to, text = _first(fields, GATEWAY_TO_FIELDS), _first(fields, GATEWAY_TEXT_FIELDS)
    if not to or not text:
        return replies.gateway_error(400, "Missing number or message")
    return Incoming(to=to, body=text, credential=credential, sender=fields.get("sender"))


def _body_fields(content_type: str, raw: bytes) -> dict[str, str] | None:
    if "json" in content_type.lower():
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
    return _last_values(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _last_values(multi: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in multi.items()}


def _first(fields: dict[str, str], names: tuple[str, ...]) -> str:
    return next((fields[name] for name in names if fields.get(name)), "")
