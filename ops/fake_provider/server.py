"""``FakeProviderServer``: a local stand-in for the WhatsApp Cloud API (and an MPWA gateway)."""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from wanotify.ops.fake_provider import webhooks
from wanotify.ops.fake_provider.cloud_rules import RegisteredTemplate
from wanotify.ops.fake_provider.handler import FakeHandler
from wanotify.ops.fake_provider.state import FakeState
from wanotify.ops.fake_provider.webhooks import Delivery

CallListener = Callable[[dict[str, Any]], None]

log = logging.getLogger(__name__)


class FakeHTTPServer(ThreadingHTTPServer):
    """The socket server; carries the shared state and settings the handlers read."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, latency: float, timeout_sleep: float,
                 on_call: CallListener | None, strict: bool = False) -> None:
        self.state = FakeState(strict)
        self.latency = latency
        self.timeout_sleep = timeout_sleep
        self.on_call = on_call
        self.stopping = threading.Event()  # wakes handlers sleeping in latency/timeout mode
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, FakeHandler)

    def announce(self, call: dict[str, Any]) -> None:
        """Tell the listener (the CLI's printer) about a call; its failure must not break the reply."""
        if self.on_call is None:
            return
        try:
            self.on_call(call)
        except Exception:
            log.exception("fake provider call listener failed")

    # Keep-alive connections outlive serve_forever(); they are tracked so stop() can cut
    # them, otherwise a pooled client would keep talking to a "stopped" server.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class FakeProviderServer:
    """A fake WhatsApp Cloud API on a local port, with failure injection and a record of calls.

    Binds at construction (port 0 picks a free port), serves after ``start()``; usable as a
    context manager. Routes: ``POST /{version}/{phone_number_id}/messages`` (Cloud API),
    ``GET|POST /send-message`` (MPWA gateway), ``/_fake/...`` (control API, see control.py).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0,
                 timeout_sleep: float = 5.0, on_call: CallListener | None = None, strict: bool = False) -> None:
        """``strict``: refuse text outside a recipient's window and unregistered templates, like the
        real Cloud API (see cloud_rules.py); off, every well-formed message is accepted."""
        self._http = FakeHTTPServer((host, port), latency=latency, timeout_sleep=timeout_sleep, on_call=on_call,
                                    strict=strict)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._http.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use as WHATSAPP_API_BASE_URL)."""
        return f"http://{self.host}:{self.port}"

    @property
    def latency(self) -> float:
        """Seconds every message request waits before it is answered."""
        return self._http.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._http.latency = seconds

    @property
    def timeout_sleep(self) -> float:
        """Seconds "timeout" mode waits before answering 503; set it above the client's timeout."""
        return self._http.timeout_sleep

    @timeout_sleep.setter
    def timeout_sleep(self, seconds: float) -> None:
        self._http.timeout_sleep = seconds

    def start(self) -> FakeProviderServer:
        """Serve in a background daemon thread; returns ``self``."""
        if self._thread is None:
            # A short poll interval keeps stop() fast; tests start and stop many servers.
            serve = functools.partial(self._http.serve_forever, poll_interval=0.05)
            self._thread = threading.Thread(target=serve, name="fake-whatsapp", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers, cut open connections and free the port."""
        self._http.stopping.set()
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._http.close_connections()
        self._http.server_close()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def calls(self) -> list[dict[str, Any]]:
        """Recorded message requests, oldest first: ``seq, t, to, body, path, outcome, status, message_id, ...``."""
        return self._http.state.calls()

    def reset(self) -> None:
        """Forget recorded calls (failure injection stays; see ``clear_failures``)."""
        self._http.state.reset()

    def fail_next(self, n: int, mode: str = "5xx") -> None:
        """Fail the next ``n`` message requests with ``mode`` (5xx, timeout, 429, permanent, quality, pair)."""
        self._http.state.fail_next(n, mode)

    def set_failure_rate(self, rate: float, mode: str = "5xx", seed: int | None = None) -> None:
        """Fail each message request with probability ``rate``."""
        self._http.state.set_failure_rate(rate, mode, seed)

    def clear_failures(self) -> None:
        """Stop all failure injection."""
        self._http.state.clear_failures()

    @property
    def strict(self) -> bool:
        """Whether the Cloud API's window and template rules are enforced."""
        return self._http.state.rules.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._http.state.rules.strict = value

    def open_window(self, phone: str) -> None:
        """``phone`` wrote to the business: free-form text may go to them for a day (strict mode)."""
        self._http.state.open_window(phone)

    def close_window(self, phone: str) -> None:
        """As if ``phone``'s window had expired."""
        self._http.state.rules.close_window(phone)

    def register_template(self, name: str, language: str, body_params: int | Sequence[str] = 0, *,
                          status: str = "APPROVED", text: str | None = None) -> None:
        """Approve a template for strict mode: its body takes ``body_params`` positional parameters
        (a count) or named ones (their names); ``status`` PAUSED or DISABLED refuses it (132015/132016)."""
        params = body_params if isinstance(body_params, int) else tuple(body_params)
        self._http.state.rules.register(RegisteredTemplate(name, language, params, status, text))

    def wait_for_calls(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``n`` calls are recorded and return them all; TimeoutError otherwise."""
        return self._http.state.wait_for_calls(n, timeout)

    def send_inbound(self, webhook_url: str, app_secret: str, phone: str, text: str | None = "hi",
                     **options: Any) -> Delivery:
        """Play Meta: POST a user's message from ``phone`` to the webhook, signed with ``app_secret``
        (in strict mode it also opens the recipient's window here)."""
        return webhooks.send_inbound(self._http.state, webhook_url, app_secret, phone, text, **options)

    def send_template_status(self, webhook_url: str, app_secret: str, name: str, language: str, event: str,
                             **options: Any) -> Delivery:
        """Play Meta: POST a template status change (APPROVED, PAUSED, DISABLED…) to the webhook."""
        return webhooks.send_template_status(webhook_url, app_secret, name, language, event, **options)
