"""What every provider adapter shares: the message, the result, the interface, and HTTP plumbing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from wanotify.consumers.providers.classify import classify_network_error
from wanotify.shared.errors import ConfigError
from wanotify.shared.meta_templates import TemplateCall

# The sender sends one message at a time per process, so a couple of sockets is plenty.
POOL_SIZE = 4
# Connecting should be quick even when the provider is slow to answer; a long connect
# usually means the host is unreachable, and waiting the full read timeout wastes the slot.
MAX_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message, ready to hand to a provider."""

    log_id: int
    recipient: str  # E.164 with leading "+", e.g. "+628114040707"
    body: str  # rendered text
    template: str
    language: str
    # The approved template to send instead of the text (Cloud API only; the sender decides).
    template_call: TemplateCall | None = None


@dataclass(frozen=True)
class SendResult:
    """What the provider told us about an accepted message."""

    provider_message_id: str | None


class Provider(Protocol):
    """A way to deliver a WhatsApp message.

    ``send`` raises ``TransientError`` (incl. ``QualityLimitError``) or ``PermanentError``
    from ``wanotify.shared.errors``; any other exception is a bug.
    """

    name: str

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def close(self) -> None: ...


@runtime_checkable
class Preparing(Protocol):
    """A provider that can do a call's work ahead of its slot (building the payload and the HTTP
    request), so the call leaves as the slot opens: ``prepare(message)()`` is ``send(message)``."""

    def prepare(self, message: OutgoingMessage) -> Callable[[], SendResult]: ...


def preparer(provider: Provider) -> Callable[[OutgoingMessage], Callable[[], SendResult]]:
    """How ``provider``'s calls are prepared ahead of their slot, as far as it can: decided once
    per provider (a runtime protocol check is too slow to repeat on every call)."""
    if isinstance(provider, Preparing):
        return provider.prepare
    return lambda message: partial(provider.send, message)


def build_session(url: str, extra_headers: dict[str, str] | None = None) -> requests.Session:
    """A session holding what the environment says about ``url``, read once.

    That is ``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` and a ``.netrc`` entry; a change
    to them takes effect when the sender restarts, like every other setting. ``HttpClient``
    takes the session's connection pool and headers and sends each call itself.
    """
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "wanotify"})
    if extra_headers:
        session.headers.update(extra_headers)
    environment = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies, session.verify, session.cert = environment["proxies"], environment["verify"], environment["cert"]
    session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False
    return session


def timeouts(timeout_seconds: float) -> urllib3.Timeout:
    """The connect and read timeouts, from the single configured timeout."""
    return urllib3.Timeout(connect=min(timeout_seconds, MAX_CONNECT_TIMEOUT), read=timeout_seconds)


def require_http_url(value: str | None, env_var: str) -> str:
    """Validate a base URL at start-up, so a typo fails once rather than on every message."""
    if not value:
        raise ConfigError(f"{env_var} is required for this WhatsApp provider")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{env_var} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def describe_target(method: str, url: str) -> str:
    """``METHOD host/path`` without the query string, which may carry an API key."""
    parts = urlsplit(url)
    return f"{method} {parts.netloc}{parts.path}"


@dataclass(frozen=True)
class Reply:
    """A provider's answer to one call."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class Request:
    """One call, encoded and ready to go (``HttpClient.prepare``)."""

    method: str
    url: str  # with its query string
    body: bytes | None
    headers: dict[str, str]


class HttpClient:
    """The calls to one provider URL, over a pool of kept-alive connections.

    ``requests`` reads what the environment says about the URL, once (``build_session``), and
    sets up the urllib3 connection pool for it, with its proxy and certificate settings; each
    call goes straight to that pool. ``requests``' own preparation and ``Session.send`` around
    it (settings merged again, hooks, cookies, a ``Response`` that guesses its text's charset)
    took about a third of a call's CPU in the sender.
    """

    def __init__(self, url: str, timeout_seconds: float, extra_headers: dict[str, str] | None = None) -> None:
        session = build_session(url, extra_headers)
        adapter = session.get_adapter(url)
        assert isinstance(adapter, HTTPAdapter)  # as build_session mounted it
        probe = session.prepare_request(requests.Request("GET", url))  # the session's headers and .netrc auth
        pool = adapter.get_connection_with_tls_context(probe, session.verify, session.proxies, session.cert)
        assert isinstance(pool, urllib3.HTTPConnectionPool)  # HTTPS pools are HTTP pools too
        try:
            adapter.cert_verify(pool, url, session.verify, session.cert)  # type: ignore[no-untyped-call]
        except OSError as exc:  # a CA bundle or client certificate named in the environment is missing
            raise ConfigError(f"TLS settings for {urlsplit(url).netloc} cannot be used: {exc}") from None
        self._session, self._pool = session, pool
        self._headers = dict(probe.headers)
        # Through an HTTP proxy an http:// request names the whole URL; otherwise (https:// tunnels
        # through it, SOCKS) only its path, as requests does.
        proxy = requests.utils.select_proxy(url, session.proxies)
        self._absolute = bool(proxy) and urlsplit(url).scheme == "http" and not str(proxy).lower().startswith("socks")
        self._timeout = timeouts(timeout_seconds)

    def prepare(self, method: str, url: str, *, params: dict[str, str] | None = None, json_body: Any = None,
                form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Request:
        """The call, encoded: ``params`` in the query string, a ``json_body`` or ``form`` as the body."""
        if params:
            url = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"
        body, content_type = None, None
        if json_body is not None:
            body, content_type = json.dumps(json_body, allow_nan=False).encode(), "application/json"
        elif form is not None:
            body, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        all_headers = self._headers | (headers or {})
        if content_type:
            all_headers["Content-Type"] = content_type
        return Request(method, url, body, all_headers)

    def perform(self, request: Request) -> Reply:
        """Send one prepared request; network failures become ``TransientError`` with a secret-free message."""
        target = request.url if self._absolute else _path_and_query(request.url)
        try:
            raw = self._pool.urlopen(
                request.method, target, body=request.body, headers=request.headers,
                # No redirects: following one would turn a POST into a GET and hide a wrong base URL.
                # No retries: they belong to the queues, with delays, counters and a dead-letter
                # end; a hidden retry would send duplicates and skew the gap between messages.
                redirect=False, retries=False, assert_same_host=False, timeout=self._timeout, preload_content=True)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            # ``from None``: the exception text holds the full URL, query string included.
            raise classify_network_error(exc, describe_target(request.method, request.url)) from None
        return Reply(raw.status, raw.headers, raw.data)

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Remove secrets from text that came back from a provider before it reaches logs or the DB."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def json_or_none(reply: Reply) -> Any:
    """The decoded JSON body, or ``None`` when the body is not JSON (HTML error pages, empty)."""
    try:
        return json.loads(reply.content)
    except ValueError:  # not JSON, or not text (UnicodeDecodeError)
        return None
