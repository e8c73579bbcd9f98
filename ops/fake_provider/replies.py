"""The answers the fake gives, shaped like the real Cloud API and an MPWA-style gateway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One HTTP answer plus what gets recorded about it."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = "ok"  # "ok" | "error" | "timeout"
    message_id: str | None = None


# mode -> (HTTP status, Cloud API error code, message). "timeout" answers like "5xx" once it
# has slept past the client's timeout. Code 2 is what the Graph API sends when it is down.
CLOUD_FAILURES: dict[str, tuple[int, int, str]] = {
    "5xx": (503, 2, "Service temporarily unavailable"),
    "timeout": (503, 2, "Service temporarily unavailable"),
    "429": (429, 130429, "Rate limit hit"),
    "permanent": (400, 131026, "Message undeliverable"),
    "quality": (400, 131048, "Spam rate limit hit"),
    "pair": (400, 131056, "(Business Account, Consumer Account) pair rate limit hit"),
    # The window, opt-outs and templates (the Cloud API only; a gateway answers "permanent").
    "needs_template": (400, 131047, "Re-engagement message"),
    "opted_out": (400, 131050, "Unable to deliver the message: the user stopped marketing messages"),
    "template_params": (400, 132000, "Number of parameters does not match the expected number of params"),
    "template_missing": (404, 132001, "Template name does not exist in the translation"),
    "text_too_long": (400, 132005, "Translated text too long"),
    "template_policy": (400, 132007, "Template format character policy violated"),
    "param_format": (400, 132012, "Parameter format does not match format in the created template"),
    "template_paused": (400, 132015, "Template is Paused"),
    "template_disabled": (400, 132016, "Template is Disabled"),
}

# mode -> (HTTP status, "msg"). Like many panels, the gateway refuses a message with a 200 and
# ``"status": false``; the adapter notices only with WHATSAPP_GATEWAY_SUCCESS_FIELD=status.
GATEWAY_FAILURES: dict[str, tuple[int, str]] = {
    "5xx": (503, "Service unavailable"),
    "timeout": (503, "Service unavailable"),
    "429": (429, "Too many requests"),
    "permanent": (200, "Invalid number: not registered on WhatsApp"),
    "quality": (200, "Spam rate limit hit, sending paused"),
    "pair": (200, "Too many messages to this number, try again later"),
}


def _retry_after(mode: str) -> dict[str, str]:
    return {"Retry-After": "1"} if mode == "429" else {}


def _outcome(mode: str) -> str:
    return "timeout" if mode == "timeout" else "error"


def cloud_success(to: str) -> Reply:
    """``200`` with a fresh ``wamid.<hex>`` id."""
    message_id = f"wamid.{uuid.uuid4().hex}"
    body = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": message_id}],
    }
    return Reply(200, body, message_id=message_id)


def cloud_error(status: int, code: int, message: str, *, details: str = "", mode: str = "") -> Reply:
    """An error in the Cloud API's shape: ``{"error": {"message": "(#code) ...", "code": ...}}``."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": uuid.uuid4().hex[:22],
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Reply(status, {"error": error}, headers=_retry_after(mode), outcome=_outcome(mode))


def cloud_failure(mode: str) -> Reply:
    """The injected failure ``mode`` as the Cloud API would say it."""
    status, code, message = CLOUD_FAILURES[mode]
    return cloud_error(status, code, message, mode=mode)


def cloud_bad_request(problem: str) -> Reply:
    """``400`` code 100, what the Cloud API answers to a malformed request."""
    return cloud_error(400, 100, "Invalid parameter", details=problem)


def gateway_success() -> Reply:
    """MPWA's success answer."""
    message_id = uuid.uuid4().hex
    body = {"status": True, "msg": "Message sent", "data": {"id": message_id}}
    return Reply(200, body, message_id=message_id)


def gateway_error(status: int, message: str, *, mode: str = "") -> Reply:
    """MPWA's refusal: ``{"status": false, "msg": ...}``."""
    return Reply(status, {"status": False, "msg": message}, headers=_retry_after(mode), outcome=_outcome(mode))


def gateway_failure(mode: str) -> Reply:
    """The injected failure ``mode`` as an MPWA-style gateway would say it."""
    status, message = GATEWAY_FAILURES.get(mode, GATEWAY_FAILURES["permanent"])
    return gateway_error(status, message, mode=mode)


def not_found(path: str) -> Reply:
    """Unknown route."""
    return Reply(404, {"error": f"no route for {path}"}, outcome="error")
