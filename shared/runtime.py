"""Runtime settings (the seed's keys), changeable without a redeploy.

The environment gives the defaults; a row in the ``settings`` table overrides one key. The
sender reads them at every call, so ``wanotify settings set`` takes effect at the next message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.db.models import RuntimeSetting
from shared.errors import ConfigError


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"must be >= 0, got {raw!r}")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be >= 0, got {raw!r}")
    return value


# key -> (parser, description)
KEYS: dict[str, tuple[Any, str]] = {
    "auto_retry_enabled": (_bool, "retry transient failures automatically (else they are parked as dead)"),
    "max_retry_attempts": (_non_negative_int, "retries after the first attempt (MAX_RETRIES)"),
    "retry_delay_minutes": (_non_negative_float, "delay before the first retry, in minutes (RETRY_DELAY_SECONDS / 60)"),
    "message_delay_seconds": (_non_negative_float, "minimum gap between two provider calls (SEND_GAP_SECONDS)"),
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
    if key not in KEYS:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(KEYS)}")
    parser, _ = KEYS[key]
    try:
        return parser(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid value for {key}: {exc}") from None


def load(session: Session, settings: Settings) -> RuntimeSettings:
    values = env_defaults(settings)
    for row in session.scalars(select(RuntimeSetting)):
        if row.key in KEYS:
            values[row.key] = parse_value(row.key, row.value)
    return RuntimeSettings(**values)


def describe(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every key with its effective value and where it comes from."""
    stored = {row.key: row for row in session.scalars(select(RuntimeSetting))}
    rows = []
    for key, value in env_defaults(settings).items():
        row = stored.get(key)
        rows.append({
            "key": key,
            "value": parse_value(key, row.value) if row else value,
            "source": "database" if row else "environment",
            "description": KEYS[key][1],
        })
    return rows


def set_value(session: Session, key: str, raw: str) -> Any:
    value = parse_value(key, raw)
    stmt = insert(RuntimeSetting).values(key=key, value=str(value))
    session.execute(stmt.on_conflict_do_update(index_elements=[RuntimeSetting.key], set_={"value": str(value)}))
    return value
