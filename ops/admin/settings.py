"""Changing runtime settings (``wanotify.shared.runtime``) as an admin action: validated, and audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from wanotify.ops.admin.audit import record
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared import runtime
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError

ZERO_GAP_WARNING = ("a gap of 0 sends as fast as the provider answers; WhatsApp may rate-limit or ban the number — "
                    "reset it to go back to the environment's gap")


def listing(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every runtime setting: its value, where it comes from (environment or database), what it means."""
    return runtime.describe(session, settings)


def change(session: Session, actor: str, key: str, raw: str) -> tuple[Any, str | None]:
    """Store a new value (checked against its bounds); returns it and a warning, if any."""
    try:
        value = runtime.set_value(session, key, raw.strip())
    except ConfigError as exc:
        raise ActionRefused(str(exc)) from None
    record(session, actor, "setting.set", target={"key": key}, detail=str(value))
    return value, ZERO_GAP_WARNING if key == "message_delay_seconds" and value == 0 else None


def reset(session: Session, settings: Settings, actor: str, key: str) -> Any:
    """Forget the stored value: the environment's default applies again (returned)."""
    try:
        value = runtime.reset(session, settings, key)
    except ConfigError as exc:
        raise ActionRefused(str(exc)) from None
    record(session, actor, "setting.reset", target={"key": key}, detail=str(value))
    return value
