"""Serving the app with uvicorn, with the limits only a server can enforce.

uvicorn bounds how large the request line and headers may be (h11's incomplete-event size)
and how many connections are open (``limit_concurrency``: past it, 503 at once), but not how
long a client may take to send its headers: a client that connects and trickles a header
byte now and then would hold its connection, and a slot of ``limit_concurrency``, forever.
``HeaderDeadlineProtocol`` closes such a connection once ``header_timeout_seconds`` have
passed since it opened (or since its last response) without a complete request head.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from wanotify.ops.web.limits import Limits

log = logging.getLogger(__name__)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose request head is overdue."""

    header_timeout_seconds = 10.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()  # a kept-alive connection owes the next request's head in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout_seconds, self._head_overdue)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_overdue(self) -> None:
        # IDLE: h11 has not yet seen a whole request line and headers on this connection.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closed a connection that sent no complete request head within %g s", self.header_timeout_seconds)
            self.transport.close()


def protocol_with(limits: Limits) -> type[HeaderDeadlineProtocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,),
                {"header_timeout_seconds": limits.header_timeout_seconds})


def build_server(app: ASGIApp, limits: Limits, **options: Any) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the server-side limits; ``options`` go to ``uvicorn.Config``."""
    config = uvicorn.Config(
        app, http=protocol_with(limits), ws="none", lifespan="on", log_config=None, server_header=False,
        access_log=False,  # it would log the handshake's verify token (in the query string)
        limit_concurrency=limits.max_concurrency, h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=5, timeout_graceful_shutdown=10, **options)
    return uvicorn.Server(config)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket; raises OSError (address in use, not ours) before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    # asyncio turns Nagle off only on sockets it made itself (proto IPPROTO_TCP); this one has
    # proto 0, so a kept-alive response written in two parts (head, body) would wait ~40 ms for
    # the client's delayed ACK. Accepted connections inherit the option from the listener.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def serve(app: ASGIApp, limits: Limits, sock: socket.socket) -> None:
    """Run until SIGINT/SIGTERM; uvicorn stops gracefully, then this returns (exit code 0)."""
    # uvicorn re-raises the signal it stopped on once it is done; ignoring it then lets the
    # command end normally instead of dying by the signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    build_server(app, limits).run(sockets=[sock])
