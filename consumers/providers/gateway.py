"""Generic API-key gateway adapter (self-hosted "MPWA"-style panels, Fonnte, Wablas, ...).

The request shape comes from ``WhatsAppSettings.gateway`` (env ``WHATSAPP_GATEWAY_<KEY>``):
path, method, where the key goes, body encoding, field names, number format, and how to
read success and the message id from the reply. The defaults match MPWA:
``POST {base}/send-message`` with form fields ``api_key``, ``sender``, ``number``, ``message``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from wanotify.consumers.providers.base import (
    HttpClient,
    OutgoingMessage,
    Reply,
    Request,
    SendResult,
    json_or_none,
    redact,
    require_http_url,
)
from wanotify.consumers.providers.classify import (
    classify_gateway_rejection,
    classify_http_status,
    shorten,
)
from wanotify.shared.config import WhatsAppSettings
from wanotify.shared.errors import ConfigError, TransientError

CHOICES = {
    "method": ("POST", "GET"),
    "key_in": ("body", "query", "header"),
    "encoding": ("form", "json", "query"),
    "number_format": ("digits", "plus"),
}
TRUTHY_WORDS = frozenset({"true", "ok", "success", "sent", "yes", "1"})
REASON_KEYS = ("msg", "message", "reason", "detail", "error", "errors")


@dataclass(frozen=True)
class GatewayShape:
    """How requests to the gateway look and how its replies are read."""

    path: str = "/send-message"
    method: str = "POST"
    key_in: str = "body"
    key_field: str = "api_key"
    encoding: str = "form"
    to_field: str = "number"
    text_field: str = "message"
    sender_field: str | None = "sender"  # None: the gateway takes no sender field
    number_format: str = "digits"
    success_field: str | None = None  # dotted path that must be truthy, e.g. "status"
    id_field: str | None = None  # dotted path to the message id, e.g. "data.id"

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> GatewayShape:
        """Validate the ``WHATSAPP_GATEWAY_*`` options; a typo fails at start-up, not per message."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            names = ", ".join(f"WHATSAPP_GATEWAY_{key.upper()}" for key in unknown)
            raise ConfigError(f"unknown gateway option(s) {names}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {key: value.strip() for key, value in options.items()}
        _normalise_choices(values)
        _apply_defaults(values)
        shape = cls(**values)
        if shape.method == "GET" and shape.encoding != "query":
            raise ConfigError("WHATSAPP_GATEWAY_METHOD=GET sends fields in the query string; "
                              "set WHATSAPP_GATEWAY_ENCODING=query")
        return shape


def _normalise_choices(values: dict[str, Any]) -> None:
    for key, allowed in CHOICES.items():
        if not values.get(key):
            continue
        value = values[key].upper() if key == "method" else values[key].lower()
        if value not in allowed:
            raise ConfigError(f"WHATSAPP_GATEWAY_{key.upper()} must be one of {', '.join(allowed)}, got {value!r}")
        values[key] = value


def _apply_defaults(values: dict[str, Any]) -> None:
    """Empty values mean "default", except for the optional fields where empty means "none"."""
    for optional in ("sender_field", "success_field", "id_field"):
        if optional in values and not values[optional]:
            values[optional] = None
    for key in [k for k, v in values.items() if v == ""]:
        del values[key]
    if values.get("method") == "GET":
        values.setdefault("encoding", "query")
    if values.get("key_in") == "header":
        values.setdefault("key_field", "Authorization")
    if "path" in values and not values["path"].startswith("/"):
        values["path"] = "/" + values["path"]


class GatewayProvider:
    """Sends through an API-key gateway whose request shape is described by ``GatewayShape``."""

    name = "gateway"

    def __init__(self, settings: WhatsAppSettings) -> None:
        base = require_http_url(settings.base_url, "WHATSAPP_API_BASE_URL")
        if not settings.api_key:
            raise ConfigError("WHATSAPP_API_KEY is required when WHATSAPP_PROVIDER=gateway")
        self.shape = GatewayShape.from_options(settings.gateway)
        self.url = base + self.shape.path
        self._api_key = settings.api_key
        self._sender = settings.sender
        self._http = HttpClient(self.url, settings.timeout_seconds)

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send ``message``; raises TransientError / PermanentError on failure."""
        return self.prepare(message)()

    def prepare(self, message: OutgoingMessage) -> Callable[[], SendResult]:
        """The request built now; the returned call sends it (``send``, in two steps)."""
        return partial(self._call, self._http.prepare(self.shape.method, self.url, **self.request_arguments(message)))

    def _call(self, request: Request) -> SendResult:
        response = self._http.perform(request)
        payload = json_or_none(response)
        if not 200 <= response.status_code < 300:
            detail = self._clean(reason_text(payload) or response.text)
            raise classify_http_status(response.status_code, detail=detail, headers=response.headers)
        self._check_success(payload, response)
        message_id = lookup(payload, self.shape.id_field) if self.shape.id_field else None
        return SendResult(provider_message_id=None if message_id in (None, "") else str(message_id))

    def close(self) -> None:
        """Release the pooled connections."""
        self._http.close()

    def request_arguments(self, message: OutgoingMessage) -> dict[str, Any]:
        """The ``HttpClient.prepare`` keyword arguments (params/form/json_body/headers) for one message."""
        shape = self.shape
        body: dict[str, str] = {shape.to_field: self.format_number(message.recipient), shape.text_field: message.body}
        if shape.sender_field and self._sender:
            body[shape.sender_field] = self._sender
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        if shape.key_in == "header":
            headers[shape.key_field] = self._api_key
        elif shape.key_in == "query":
            params[shape.key_field] = self._api_key
        else:
            body[shape.key_field] = self._api_key
        arguments: dict[str, Any] = {"headers": headers}
        if shape.encoding == "query":
            arguments["params"] = {**params, **body}
        else:
            arguments["params"] = params
            arguments["json_body" if shape.encoding == "json" else "form"] = body
        return arguments

    def format_number(self, recipient: str) -> str:
        """``+628…`` becomes ``628…`` ("digits") or stays ``+628…`` ("plus")."""
        digits = recipient.lstrip("+")
        return "+" + digits if self.shape.number_format == "plus" else digits

    def _check_success(self, payload: Any, response: Reply) -> None:
        field_path = self.shape.success_field
        if not field_path:
            return
        if not isinstance(payload, (dict, list)):
            # We were told to read a JSON verdict and got none (an HTML page, an empty body):
            # most likely a proxy or a wrong URL, not the gateway; a later attempt may reach it.
            raise TransientError(f"gateway answered HTTP {response.status_code} without a JSON body",
                                 code="gateway_bad_response")
        if not is_truthy(lookup(payload, field_path)):
            raise classify_gateway_rejection(self._clean(reason_text(payload)))

    def _clean(self, text: str) -> str:
        return shorten(redact(text, [self._api_key]))


def lookup(payload: Any, dotted_path: str) -> Any:
    """``payload["data"]["id"]`` for ``"data.id"``; numeric parts index lists; ``None`` if absent."""
    current = payload
    for part in dotted_path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def is_truthy(value: Any) -> bool:
    """Gateways say success as ``true``, ``1``, ``"true"``, ``"success"`` ...; anything else is a no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in TRUTHY_WORDS
    return False


def reason_text(payload: Any) -> str:
    """The gateway's own explanation (``msg``, ``message``, ``reason`` ...), as one string."""
    if not isinstance(payload, dict):
        return ""
    for key in REASON_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, (dict, list)) and value:
            return str(value)
    return ""
