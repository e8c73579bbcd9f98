"""Senders as data: the WhatsApp numbers wanotify sends from (contract section 7).

A sender is a row of the ``senders`` table (``wanotify senders add``). With no rows, the
environment's single-number configuration (``WHATSAPP_*``, ``SEND_GAP_SECONDS``,
``DAILY_LIMIT``) is one sender named ``default``, so a setup from before senders existed
works unchanged.

Secrets never reach the database: a row names the environment variable that holds its
token (``token_env``) or API key (``api_key_env``), read when the sender's provider is built.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wanotify.shared.config import Settings, WhatsAppSettings
from wanotify.shared.db.models import SenderRow
from wanotify.shared.errors import ConfigError
from wanotify.shared.topology import DEFAULT_SENDER

PROVIDER_KINDS = ("meta", "gateway", "fake")
# The provider settings a sender row may carry (everything else about it has a column).
SETTING_KEYS = ("phone_number_id", "token_env", "api_key_env", "sender_number", "base_url", "api_version", "waba_id")


@dataclass(frozen=True)
class SenderConfig:
    """One sender, as every process sees it."""

    name: str
    provider: str
    settings: Mapping[str, str] = field(default_factory=dict)
    gap_min_seconds: float | None = None  # None: the runtime gap (SEND_GAP_SECONDS / settings)
    gap_max_seconds: float | None = None
    daily_limit: int | None = None
    daily_reserve: int = 0
    warmup: tuple[int, ...] = ()
    warmup_started_at: datetime | None = None
    disabled: bool = False
    from_environment: bool = False  # the implicit `default` sender

    def gap(self, runtime_gap: float, rng: random.Random | None = None) -> float:
        """The gap before this sender's next call: fixed, or drawn from its jittered range."""
        low = runtime_gap if self.gap_min_seconds is None else self.gap_min_seconds
        high = self.gap_max_seconds
        if high is None or high <= low:
            return low
        return (rng or random).uniform(low, high)

    def limit_on(self, now: datetime) -> int | None:
        """The daily unique-recipient limit in force at ``now``: the warm-up ramp's step for the
        number's day of life, then ``daily_limit``."""
        if self.warmup and self.warmup_started_at is not None:
            day = int((now - self.warmup_started_at).total_seconds() // 86_400)
            if 0 <= day < len(self.warmup):
                return self.warmup[day] if self.daily_limit is None else min(self.warmup[day], self.daily_limit)
        return self.daily_limit

    def whatsapp(self, base: WhatsAppSettings, env: Mapping[str, str] | None = None) -> WhatsAppSettings:
        """The provider settings this sender sends with; secrets read from the named variables.

        ConfigError names the sender and the variable when a secret is missing."""
        if self.from_environment:
            return base
        env = os.environ if env is None else env
        s = self.settings
        token = self._secret(env, s.get("token_env")) if self.provider == "meta" else None
        api_key = self._secret(env, s.get("api_key_env")) if self.provider == "gateway" else None
        return replace(base, provider=self.provider, base_url=s.get("base_url") or base.base_url,
                       api_version=s.get("api_version") or base.api_version,
                       phone_number_id=s.get("phone_number_id"), access_token=token, api_key=api_key,
                       sender=s.get("sender_number"), waba_id=s.get("waba_id") or base.waba_id)

    def _secret(self, env: Mapping[str, str], variable: str | None) -> str:
        if not variable:
            raise ConfigError(f"sender {self.name!r} names no environment variable for its secret")
        value = env.get(variable)
        if not value:
            raise ConfigError(f"sender {self.name!r}: environment variable {variable} (its secret) is not set")
        return value


def environment_sender(settings: Settings) -> SenderConfig:
    """The implicit ``default`` sender of a setup without sender rows."""
    return SenderConfig(name=DEFAULT_SENDER, provider=settings.whatsapp.provider or "", daily_limit=settings.daily_limit,
                        from_environment=True)


def from_row(row: SenderRow) -> SenderConfig:
    return SenderConfig(
        name=row.name, provider=row.provider, settings=dict(row.settings or {}),
        gap_min_seconds=row.gap_min_seconds, gap_max_seconds=row.gap_max_seconds,
        daily_limit=row.daily_limit, daily_reserve=row.daily_reserve or 0,
        warmup=tuple(int(n) for n in (row.warmup or ())), warmup_started_at=row.warmup_started_at,
        disabled=row.disabled_at is not None,
    )


def load_senders(session: Session, settings: Settings) -> list[SenderConfig]:
    """Every sender, disabled ones included, by name; the environment's ``default`` when there
    are no rows."""
    rows = session.scalars(select(SenderRow).order_by(SenderRow.name)).all()
    if not rows:
        return [environment_sender(settings)]
    return [from_row(row) for row in rows]


def active_senders(session: Session, settings: Settings) -> list[SenderConfig]:
    return [s for s in load_senders(session, settings) if not s.disabled]


def describe_settings(config: SenderConfig) -> dict[str, Any]:
    """What `senders show` and the console may print: names of variables, never their values."""
    return {key: config.settings[key] for key in SETTING_KEYS if config.settings.get(key)}
