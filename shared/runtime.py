"""Runtime settings (the seed's keys), changeable without a redeploy.

The environment gives the defaults; a row in the ``settings`` table overrides one key. The
sender reads them at every call, so ``wanotify settings set`` takes effect at the next message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.shared.config import MAX_GAP_SECONDS, MAX_RETRIES_LIMIT, MAX_RETRY_DELAY_SECONDS, Settings, parse_bounded
from wanotify.shared.db.models import RuntimeSetting
from wanotify.shared.errors import ConfigError

log = logging.getLogger(__name__)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _bounded(kind: type[int] | type[float], maximum: float) -> Callable[[str], Any]:
    return lambda raw: parse_bounded(raw, kind, 0, maximum)


@dataclass(frozen=True)
class Key:
    parse: Callable[[str], Any]
    description: str


KEYS: dict[str, Key] = {
    "auto_retry_enabled": Key(_bool, "retry transient failures automatically after the delay (when false, "
                              "they wait as failed until `wanotify retry-failed`)"),
    "max_retry_attempts": Key(_bounded(int, MAX_RETRIES_LIMIT),
                              f"retries after the first attempt, 0-{MAX_RETRIES_LIMIT} (MAX_RETRIES)"),
    "retry_delay_minutes": Key(_bounded(float, MAX_RETRY_DELAY_SECONDS / 60),
                               f"delay before the first retry, 0-{MAX_RETRY_DELAY_SECONDS // 60} minutes "
                               "(RETRY_DELAY_SECONDS / 60)"),
    "message_delay_seconds": Key(_bounded(float, MAX_GAP_SECONDS),
                                 f"minimum gap between two provider calls, 0-{MAX_GAP_SECONDS} seconds "
                                 "(SEND_GAP_SECONDS)"),
}


@dataclass(frozen=True)
class RuntimeSettings:
    auto_retry_enabled: bool
    max_retry_attempts: int
    retry_delay_minutes: float
    message_delay_seconds: float

    @property
    def gap_seconds(self) -> float:
        return self.message_delay_seconds

    def retry_delay_seconds(self, retry_number: int, backoff: float) -> float:
        """Delay before retry ``retry_number`` (1-based): the base delay times backoff^(n-1)."""
        return self.retry_delay_minutes * 60 * backoff ** max(0, retry_number - 1)


def env_defaults(settings: Settings) -> dict[str, Any]:
    return {
        "auto_retry_enabled": True,
        "max_retry_attempts": settings.max_retries,
        "retry_delay_minutes": settings.retry_delay_seconds / 60,
        "message_delay_seconds": settings.send_gap_seconds,
    }


def parse_value(key: str, raw: str) -> Any:
    """``raw`` as the value of ``key``; ConfigError naming the key and its bounds."""
    if key not in KEYS:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(KEYS)}")
    try:
        return KEYS[key].parse(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid value for {key}: {exc}") from None


def load(session: Session, settings: Settings) -> RuntimeSettings:
    """The effective settings; a stored value that is no longer valid falls back to the default."""
    values = env_defaults(settings)
    for row in session.scalars(select(RuntimeSetting)):
        if row.key in KEYS:
            values[row.key] = _stored(row, values[row.key])
    return RuntimeSettings(**values)


def _stored(row: RuntimeSetting, default: Any) -> Any:
    # Rows written before the bounds existed (a gap of "inf") must not stop the sender, which
    # reads these every second: it keeps the environment's value and says so once.
    try:
        return parse_value(row.key, row.value)
    except ConfigError as exc:
        _warn_once(row.key, row.value, str(exc))
        return default


@cache
def _warn_once(key: str, value: str, problem: str) -> None:
    log.warning("ignoring the stored %s (%s); using the environment's default. Fix it with "
                "`wanotify settings set %s VALUE` or `wanotify settings reset %s`", key, problem, key, key)


def describe(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every key with its effective value and where it comes from."""
    stored = {row.key: row for row in session.scalars(select(RuntimeSetting))}
    rows = []
    for key, default in env_defaults(settings).items():
        row = stored.get(key)
        value = default if row is None else _stored(row, default)
        source = "environment" if row is None else "database" if _valid(row) else "environment (stored value invalid)"
        rows.append({"key": key, "value": value, "source": source, "description": KEYS[key].description})
    return rows


def _valid(row: RuntimeSetting) -> bool:
    try:
        parse_value(row.key, row.value)
    except ConfigError:
        return False
    return True


def set_value(session: Session, key: str, raw: str) -> Any:
    """Store ``raw`` (validated) as the value of ``key``; returns the parsed value."""
    value = parse_value(key, raw)
    stmt = insert(RuntimeSetting).values(key=key, value=str(value))
    session.execute(stmt.on_conflict_do_update(index_elements=[RuntimeSetting.key], set_={"value": str(value)}))
    return value


def reset(session: Session, settings: Settings, key: str) -> Any:
    """Forget the stored value of ``key``; returns the environment's default, now in effect."""
    if key not in KEYS:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(KEYS)}")
    session.execute(delete(RuntimeSetting).where(RuntimeSetting.key == key))
    return env_defaults(settings)[key]
