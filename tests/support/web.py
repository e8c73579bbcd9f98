"""The web app under a real uvicorn server in a thread, and raw HTTP to poke at it."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from wanotify.ops.web.app import create_app
from wanotify.ops.web.limits import Limits
from wanotify.ops.web.server import build_server, listen
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog

SECRET = "app-secret"
TOKEN = "verify-me"
PATH = "/webhooks/whatsapp"


def webhook_settings(settings: Settings, **changes: object) -> Settings:
    whatsapp = replace(settings.whatsapp, verify_token=TOKEN, app_secret=SECRET)
    return settings.with_(whatsapp=whatsapp, **changes)


@dataclass
class Served:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"{self.base}{PATH}"

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextmanager
def serve(settings: Settings, limits: Limits, registry: CollectorRegistry | None = None,
          parts: tuple[str, ...] = ("webhook",)) -> Iterator[Served]:
    """``create_app(settings)`` with ``parts`` served by uvicorn on a free port of 127.0.0.1 until
    the block ends."""
    sock = listen("127.0.0.1", 0)
    server = build_server(create_app(settings, list(parts), limits, registry), limits)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield Served("127.0.0.1", sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(20)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request(served: Served, head: str | bytes, body: bytes = b"", timeout: float = 10.0) -> tuple[int | None, bytes]:
    """Send raw bytes (a request head without the blank line, then a body); returns (status, whole reply)."""
    raw_head = head.encode() if isinstance(head, str) else head
    with served.connect(timeout) as conn:
        conn.sendall(raw_head + b"\r\n\r\n" + body)
        return read_reply(conn)


def read_reply(conn: socket.socket) -> tuple[int | None, bytes]:
    """Everything the server sends until it closes (or the socket times out); and its status."""
    reply = b""
    try:
        while chunk := conn.recv(65536):
            reply += chunk
            if _complete(reply):
                break
    except TimeoutError:
        pass
    return status_of(reply), reply


def _complete(reply: bytes) -> bool:
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(reply: bytes) -> int | None:
    parts = reply.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and reply.startswith(b"HTTP/1.1 ") else None


def post_head(length: int | None = None, signature: str | bytes | None = None, extra: str = "") -> bytes:
    lines = [f"POST {PATH} HTTP/1.1".encode(), b"Host: test", b"Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    if signature is not None:
        lines.append(b"X-Hub-Signature-256: " + (signature.encode() if isinstance(signature, str) else signature))
    lines += [line.encode() for line in extra.splitlines() if line]
    return b"\r\n".join(lines)


def post_signed(served: Served, body: bytes, secret: str = SECRET) -> tuple[int | None, bytes]:
    return request(served, post_head(len(body), sign(body, secret)), body)


def receipt(wamid: str, status: str, timestamp: str = "1763800000", **extra: object) -> dict[str, object]:
    item = {"id": wamid, "status": status, "timestamp": timestamp, "recipient_id": "628114040707", **extra}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def add_message(sessions: sessionmaker[Session], status: str = "sent", wamid: str | None = None) -> str:
    wamid = wamid or f"wamid.{uuid.uuid4().hex}"
    with transaction(sessions) as session:
        session.add(MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="t",
                               recipient="+628114040707", body="hi", priority="normal", status=status,
                               provider_message_id=wamid))
    return wamid


def empty_webhook_tables(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE webhook_receipts, webhook_payloads"))


def count(sessions: sessionmaker[Session], table: str) -> int:
    with sessions() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
