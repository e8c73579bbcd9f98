"""The one place that decides what a provider's answer means: retry later, pause, or give up.

Adapters only extract the facts (HTTP status, error code, text) and raise what this module
returns. Each error carries a short ``code`` ("meta_131026", "http_503", "timeout", ...) that
becomes a metric label and is stored with the message, and a human-readable message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from wanotify.shared.consent import OPTED_OUT
from wanotify.shared.errors import PermanentError, QualityLimitError, TransientError

# Cloud API error codes. Branch on these, never on message text: Meta rewords messages,
# codes are the contract.
TRANSIENT_META_CODES = frozenset({130429, 131056, 131000, 131016, 1, 2, 4, 80007})
QUALITY_META_CODES = frozenset({131048, 131049, 368})
PERMANENT_META_CODES = frozenset({131026, 131051, 100, 131008, 190})
NEEDS_TEMPLATE_CODE = 131047  # free-form text outside the customer-service window
STOPPED_MARKETING_CODE = 131050  # the recipient stopped marketing messages from this business
# The approved template was refused: the error code stored with the message, and what to fix.
TEMPLATE_META_CODES: dict[int, tuple[str, str]] = {
    132000: ("meta_132000", "the number of parameters does not match the approved template's: fix the mapping's "
                            "--meta-params (`wanotify templates set KEY --meta-params JSON`), then replay"),
    132001: ("meta_132001", "the template does not exist in that language or is not approved yet: check "
                            "--meta-name and --meta-language against WhatsApp Manager, then replay"),
    132005: ("meta_132005", "the template's text with its parameters filled in is too long: shorten what "
                            "--meta-params puts in, then replay"),
    132007: ("meta_132007", "the content breaks WhatsApp's format or policy rules: change the parameters or the "
                            "template, then replay"),
    132012: ("meta_132012", "a parameter's value does not have the format the template expects (a URL, a number, "
                            "a date…): fix --meta-params, then replay"),
    132015: ("template_paused", "the template is paused for low quality: improve it in WhatsApp Manager or map "
                                "another approved template, then `wanotify dead replay --reason template_paused`"),
    132016: ("template_disabled", "the template is disabled (paused too often): map another approved template, "
                                  "then `wanotify dead replay --reason template_disabled`"),
}
# Meta's status of a template that one of these codes reports.
TEMPLATE_STATUS_BY_CODE = {132015: "PAUSED", 132016: "DISABLED"}


class NeedsTemplate(PermanentError):
    """131047: free-form text cannot go now; only an approved template may (the sender may resend)."""


class RecipientOptedOut(PermanentError):
    """131050: the recipient stopped marketing messages; they are recorded as opted out."""


class TemplateRefused(PermanentError):
    """A 132xxx code: the approved template, or what filled it, was refused."""

    def __init__(self, message: str, *, code: str, status: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status  # Meta's new status of the template (PAUSED, DISABLED), if the code says it

# 408 is a 4xx but means "the server gave up waiting", which a later attempt can fix.
TRANSIENT_4XX = frozenset({408, 429})

MAX_DETAIL_CHARS = 200

# What gateways say when the recipient cannot receive WhatsApp (English and Indonesian panels).
INVALID_NUMBER_PATTERN = re.compile(
    r"invalid\s+(phone\s+|whatsapp\s+|destination\s+|target\s+)?number"
    r"|number\s+(is\s+)?(invalid|not\s+valid|not\s+registered|not\s+exists?|not\s+found|not\s+on\s+whatsapp)"
    r"|not\s+(registered|exists?)\s+(on|in)\s+whatsapp"
    r"|not\s+a\s+whatsapp\s+(user|number|account)"
    r"|unregistered"
    r"|(nomor|nomer)\s+(tidak|tdk)\s+(valid|terdaftar)"
    r"|tidak\s+terdaftar",
    re.IGNORECASE,
)

Outcome = PermanentError | TransientError


def shorten(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """One line of at most ``limit`` characters, for messages stored in the database."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent or junk."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now or datetime.now(UTC))
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def _seconds_until_http_date(text: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def is_transient_status(status: int) -> bool:
    """5xx and a few 4xx (429, 408) may succeed later; every other non-2xx will not."""
    return status >= 500 or status in TRANSIENT_4XX


def classify_http_status(status: int, *, detail: str = "", headers: Mapping[str, str] | None = None,
                         code: str | None = None) -> Outcome:
    """Fallback when the body tells us nothing we know: decide by HTTP status alone."""
    message = f"HTTP {status} {shorten(detail)}".rstrip()
    label = code or f"http_{status}"
    if is_transient_status(status):
        return TransientError(message, code=label, retry_after=_retry_after(headers))
    return PermanentError(message, code=label)


def classify_meta_error(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Outcome:
    """Map a Cloud API error response (``{"error": {"code": ..., "message": ...}}``) to an error."""
    error = payload.get("error") if isinstance(payload, dict) else None
    meta_code = _int_or_none(error.get("code")) if isinstance(error, dict) else None
    if meta_code is None:
        return classify_http_status(status, detail=_describe_unknown_body(payload), headers=headers)
    assert isinstance(error, dict)  # meta_code was read from it
    text = _meta_error_text(error, meta_code)
    message = f"HTTP {status} (#{meta_code}) {text}".rstrip()
    label = f"meta_{meta_code}"
    if meta_code in QUALITY_META_CODES:
        return QualityLimitError(message, code=label, retry_after=_retry_after(headers))
    if meta_code in TRANSIENT_META_CODES:
        return TransientError(message, code=label, retry_after=_retry_after(headers))
    if meta_code in PERMANENT_META_CODES:
        return PermanentError(message, code=label)
    special = _template_or_window_error(meta_code, message)
    if special is not None:
        return special
    # A code we have not classified: the HTTP status is the best remaining hint.
    return classify_http_status(status, detail=f"(#{meta_code}) {text}", headers=headers, code=label)


def _template_or_window_error(meta_code: int, message: str) -> PermanentError | None:
    """The codes about the window, opt-outs and templates: each leads somewhere else than a plain park."""
    if meta_code == NEEDS_TEMPLATE_CODE:
        return NeedsTemplate(f"{message} — the 24-hour window is closed: only an approved template may be sent",
                             code=f"meta_{meta_code}")
    if meta_code == STOPPED_MARKETING_CODE:
        return RecipientOptedOut(f"{message} — the recipient stopped marketing messages: recorded as opted out",
                                 code=OPTED_OUT)
    if meta_code in TEMPLATE_META_CODES:
        code, fix = TEMPLATE_META_CODES[meta_code]
        return TemplateRefused(f"{message} — {fix}", code=code, status=TEMPLATE_STATUS_BY_CODE.get(meta_code))
    return None


def classify_gateway_rejection(detail: str) -> Outcome:
    """A gateway answered 2xx but said "not sent".

    Only an unmistakable "this number cannot receive WhatsApp" is permanent. Everything else
    (device disconnected, session not ready, quota, "failed") is treated as transient: those
    clear up on their own, and the bounded retry budget stops a real refusal from looping.
    Wrongly giving up would silently drop a notification; wrongly retrying costs a few attempts.
    """
    message = f"gateway refused the message: {shorten(detail) or 'no reason given'}"
    if INVALID_NUMBER_PATTERN.search(detail):
        return PermanentError(message, code="gateway_invalid_number")
    return TransientError(message, code="gateway_rejected")


def classify_network_error(exc: Exception, target: str) -> TransientError:
    """Timeouts and connection failures: the provider may be fine a moment later.

    ``target`` is "METHOD host/path"; the exception's own text is not used because it
    contains the full URL, query string (and so possibly an API key) included.
    """
    # urllib3 counts a refused connection (NewConnectionError) as a connect timeout: it is not one.
    timed_out = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)
    if timed_out and not isinstance(exc, urllib3.exceptions.NewConnectionError):
        return TransientError(f"timeout calling {target}", code="timeout")
    return TransientError(f"network error calling {target} ({type(exc).__name__})", code="network")


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    return parse_retry_after(headers.get("Retry-After")) if headers else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _meta_error_text(error: Mapping[str, Any], meta_code: int) -> str:
    """The error message without Meta's own "(#code) " prefix, plus ``error_data.details``."""
    text = str(error.get("message") or "").strip()
    prefix = f"(#{meta_code})"
    if text.startswith(prefix):
        text = text[len(prefix):].strip()
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    if details and str(details) not in text:
        text = f"{text}: {details}" if text else str(details)
    return shorten(text)


def _describe_unknown_body(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("message", "msg", "error", "detail", "reason"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
            message = value.get("message") if isinstance(value, dict) else None
            if isinstance(message, str):
                return message
    return ""
