"""Process configuration, read once from the environment at the entry point.

Nothing in the package reads ``os.environ`` elsewhere: a ``Settings`` object is built by the
command line (or a test) and passed down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from shared.errors import ConfigError

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@localhost:5432/wanotify"
PROVIDERS = ("meta", "gateway", "fake")
N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], key: str, default: N, minimum: float = 0) -> N:
    """``env[key]`` parsed as the type of ``default`` (int or float), at least ``minimum``."""
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{key} must be {'a whole number' if kind is int else 'a number'}, got {raw!r}") from None
    if not value >= minimum:  # also rejects NaN
        raise ConfigError(f"{key} must be >= {minimum}, got {raw!r}")
    return value


def _optional_int(env: Mapping[str, str], key: str) -> int | None:
    raw = env.get(key)
    return None if raw in (None, "") else _number(env, key, 0)


@dataclass(frozen=True)
class WhatsAppSettings:
    """Which provider sends, and its credentials."""

    provider: str = "fake"
    base_url: str | None = None
    api_version: str = "v21.0"
    phone_number_id: str | None = None
    access_token: str | None = None
    api_key: str | None = None
    sender: str | None = None
    verify_token: str | None = None  # webhook verification handshake
    app_secret: str | None = None  # webhook payload signatures
    timeout_seconds: float = 15.0
    # The API-key gateway's request shape; see providers/gateway.py.
    gateway: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Everything a wanotify process needs to know about its surroundings."""

    amqp_url: str = DEFAULT_AMQP_URL
    database_url: str = DEFAULT_DATABASE_URL
    namespace: str = "wanotify"
    send_gap_seconds: float = 10.0
    max_retries: int = 3
    retry_delay_seconds: float = 300.0
    retry_backoff: float = 1.0
    default_region: str = "ID"
    default_language: str = "id"
    metrics_port: int | None = None
    quality_pause_seconds: float = 3600.0
    # How often the sender looks for scheduled retries that are this overdue (their copy was lost).
    retry_sweep_seconds: float = 60.0
    log_json: bool = False
    # The status webhook: the largest body read (Meta's payloads are up to 3 MB), and how long
    # raw payloads are kept for `wanotify webhooks replay`.
    webhook_max_body_bytes: int = 3 * 1024 * 1024
    webhook_retention_days: float = 7.0
    whatsapp: WhatsAppSettings = field(default_factory=WhatsAppSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from environment variables (contract section 4)."""
        env = os.environ if env is None else env
        provider = env.get("WHATSAPP_PROVIDER", "fake") or "fake"
        if provider not in PROVIDERS:
            raise ConfigError(f"WHATSAPP_PROVIDER must be one of {', '.join(PROVIDERS)}, got {provider!r}")
        namespace = env.get("WANOTIFY_NAMESPACE", "wanotify") or "wanotify"
        if any(ch.isspace() for ch in namespace):
            raise ConfigError(f"WANOTIFY_NAMESPACE must not contain spaces, got {namespace!r}")
        gateway = {k[len("WHATSAPP_GATEWAY_"):].lower(): v for k, v in env.items() if k.startswith("WHATSAPP_GATEWAY_")}
        return cls(
            amqp_url=env.get("AMQP_URL") or DEFAULT_AMQP_URL,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            namespace=namespace,
            send_gap_seconds=_number(env, "SEND_GAP_SECONDS", 10.0),
            max_retries=_number(env, "MAX_RETRIES", 3),
            retry_delay_seconds=_number(env, "RETRY_DELAY_SECONDS", 300.0),
            retry_backoff=_number(env, "RETRY_BACKOFF", 1.0, minimum=1.0),
            default_region=(env.get("DEFAULT_REGION") or "ID").upper(),
            default_language=env.get("DEFAULT_LANGUAGE") or "id",
            metrics_port=_optional_int(env, "METRICS_PORT"),
            quality_pause_seconds=_number(env, "QUALITY_PAUSE_SECONDS", 3600.0),
            retry_sweep_seconds=_number(env, "RETRY_SWEEP_SECONDS", 60.0, minimum=0.1),
            log_json=(env.get("LOG_FORMAT", "text").lower() == "json"),
            webhook_max_body_bytes=_number(env, "WEBHOOK_MAX_BODY_BYTES", 3 * 1024 * 1024, minimum=1),
            webhook_retention_days=_number(env, "WEBHOOK_RETENTION_DAYS", 7.0),
            whatsapp=WhatsAppSettings(
                provider=provider,
                base_url=env.get("WHATSAPP_API_BASE_URL") or None,
                api_version=env.get("WHATSAPP_API_VERSION") or "v21.0",
                phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID") or None,
                access_token=env.get("WHATSAPP_ACCESS_TOKEN") or None,
                api_key=env.get("WHATSAPP_API_KEY") or None,
                sender=env.get("WHATSAPP_SENDER") or None,
                verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
                app_secret=env.get("WHATSAPP_APP_SECRET") or None,
                timeout_seconds=_number(env, "WHATSAPP_TIMEOUT_SECONDS", 15.0),
                gateway=gateway,
            ),
        )

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and sub-commands use it)."""
        return replace(self, **changes)
