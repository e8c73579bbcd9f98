"""Jinja2 filters and globals of the console's templates: times, durations, masking, static files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wanotify.shared.phone import mask_phone

STATIC_VERSION = "2"  # bump when a static file changes, so browsers fetch it again


def dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time in UTC (the console says so in its footer); "–" for none."""
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime(fmt)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return "now"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def number(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,}".replace(",", " ")


def masked(phone: str | None) -> str:
    return "–" if not phone else mask_phone(phone)


def static(name: str) -> str:
    return f"/static/{name}?v={STATIC_VERSION}"


FILTERS: dict[str, Any] = {"dt": dt, "duration": duration, "number": number, "masked": masked}
GLOBALS: dict[str, Any] = {"static": static}
