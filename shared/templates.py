"""Rendering stored templates safely.

Templates are edited by admins at run time, so they render in Jinja2's sandbox (no access to
Python internals) with ``StrictUndefined`` (a missing variable is an error, never an empty
gap in a customer's message).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.errors import InvalidEvent

MAX_RENDERED_CHARS = 4096  # WhatsApp's limit for a text message body

SAMPLE_VARIABLES: dict[str, Any] = {
    "member_id": "M-1001",
    "name": "Budi",
    "phone": "+628114040707",
    "amount": Decimal("150000"),
    "payment_url": "https://pay.example.com/i/abc123",
    "withdrawal_id": "W-2001",
    "reason": "rekening tidak sesuai",
    "event_id": "6f1c2d3e-8a9b-4c5d-9e0f-112233445566",
    "occurred_at": "2026-11-22T10:00:00Z",
}


def money(value: Any) -> str:
    """``150000`` -> ``150.000`` (Indonesian thousands separator, decimals only if present)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    whole, _, frac = f"{number:,.2f}".partition(".")
    whole = whole.replace(",", ".")
    return whole if frac == "00" else f"{whole},{frac}"


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox blocks Python internals; this also stops ``"a" * 10**9`` and ``9**9**9``,
    which would otherwise exhaust the consumer's memory or CPU inside one render."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if operator == "*" and isinstance(left, int | str | list) and isinstance(right, int | str | list):
            sizes = [len(v) if not isinstance(v, int) else v for v in (left, right)]
            if any(isinstance(v, str | list) for v in (left, right)) and sizes[0] * sizes[1] > MAX_RENDERED_CHARS:
                raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters["money"] = money
    return env


@lru_cache(maxsize=512)
def _compile(body: str) -> Any:
    return _environment().from_string(body)


def render(body: str, variables: dict[str, Any]) -> str:
    """Render a template body or raise ``InvalidEvent('template_error', ...)``."""
    try:
        text = _compile(body).render(**variables)
    except TemplateError as exc:
        raise InvalidEvent("template_error", f"template cannot render: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a broken admin template must never crash a consumer
        raise InvalidEvent("template_error", f"template cannot render: {type(exc).__name__}: {exc}") from None
    text = text.strip()
    if not text:
        raise InvalidEvent("template_error", "template rendered an empty message")
    if len(text) > MAX_RENDERED_CHARS:
        raise InvalidEvent("template_error", f"rendered message is {len(text)} characters; the limit is {MAX_RENDERED_CHARS}")
    return text


def check_syntax(body: str) -> None:
    """Raise ``InvalidEvent`` if the body does not even parse (used before saving)."""
    try:
        _environment().parse(body)
    except TemplateError as exc:
        raise InvalidEvent("template_error", f"template syntax error: {exc}") from None
