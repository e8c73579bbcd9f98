"""Process configuration, read once from the environment at the entry point.

Nothing in the package reads ``os.environ`` elsewhere: a ``Settings`` object is built by the
command line (or a test) and passed down.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import phonenumbers

from wanotify.shared.errors import ConfigError
from wanotify.shared.topology import QUEUE_TYPES
from wanotify.shared.urls import amqp_url, database_url
from wanotify.shared.urls import redact_url as redact_url  # one helper for every URL shown

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@localhost:5432/wanotify"
PROVIDERS = ("meta", "gateway", "fake")
LOG_LEVELS = ("debug", "info", "warning", "error")
N = TypeVar("N", int, float)

# Upper bounds of the pacing and retry settings, shared with the runtime settings
# (shared/runtime.py): anything beyond them is a typo, not a policy.
MAX_GAP_SECONDS = 86_400  # one call a day
MAX_RETRIES_LIMIT = 100
MAX_RETRY_DELAY_SECONDS = 7 * 86_400  # a week

PROVIDER_MISSING = (
    "WHATSAPP_PROVIDER is not set: choose meta, gateway or fake (fake sends nothing) — "
    "e.g. WHATSAPP_PROVIDER=meta with WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_ACCESS_TOKEN")


def parse_bounded(raw: str, kind: type[N], minimum: float, maximum: float | None = None) -> N:
    """``raw`` as an int or float within [minimum, maximum]; a ValueError naming the bounds.

    Infinity and NaN are refused: a gap of ``inf`` or a retry delay of ``1e308`` would be
    accepted by ``float()`` and then break the sender or the broker much later.
    """
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ValueError(f"must be {'a whole number' if kind is int else 'a number'} "
                         f"{_bounds(minimum, maximum)}, got {raw!r}") from None
    if not (math.isfinite(value) and value >= minimum and (maximum is None or value <= maximum)):
        raise ValueError(f"must be {_bounds(minimum, maximum)}, got {raw!r}")
    return value


def _bounds(minimum: float, maximum: float | None) -> str:
    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)
    return f">= {show(minimum)}" if maximum is None else f"between {show(minimum)} and {show(maximum)}"


def _number(env: Mapping[str, str], key: str, default: N, minimum: float = 0, maximum: float | None = None) -> N:
    """``env[key]`` parsed as the type of ``default`` (int or float), within [minimum, maximum]."""
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse_bounded(raw, type(default), minimum, maximum)
    except ValueError as exc:
        raise ConfigError(f"{key} {exc}") from None


def _optional_int(env: Mapping[str, str], key: str, maximum: float | None = None) -> int | None:
    raw = env.get(key)
    return None if raw in (None, "") else _number(env, key, 0, minimum=1, maximum=maximum)


def _provider(env: Mapping[str, str]) -> str | None:
    """The chosen provider, or None: sending without a choice must fail, never fake success."""
    provider = (env.get("WHATSAPP_PROVIDER") or "").strip().lower() or None
    if provider is not None and provider not in PROVIDERS:
        raise ConfigError(f"WHATSAPP_PROVIDER must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    return provider


def _keywords(raw: str | None) -> tuple[str, ...]:
    """OPT_OUT_KEYWORDS: comma-separated words, compared without regard to case."""
    if raw is None or not raw.strip():
        return ("STOP", "BERHENTI")
    return tuple(word.strip().upper() for word in raw.split(",") if word.strip())


def _choice(env: Mapping[str, str], key: str, choices: tuple[str, ...]) -> str:
    value = (env.get(key) or choices[0]).strip().lower()
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _region(env: Mapping[str, str]) -> str:
    # An unknown region ("IDN", "XX") would make every local number invalid_phone, event by event.
    region = (env.get("DEFAULT_REGION") or "ID").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"DEFAULT_REGION must be a country's two-letter code such as ID, got {region!r}")
    return region


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("LOG_LEVEL") or "info").strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


@dataclass(frozen=True)
class WhatsAppSettings:
    """Which provider sends, and its credentials. ``provider`` is None until one is chosen."""

    provider: str | None = None
    base_url: str | None = None
    api_version: str = "v21.0"
    phone_number_id: str | None = None
    access_token: str | None = None
    api_key: str | None = None
    sender: str | None = None
    verify_token: str | None = None  # webhook verification handshake
    app_secret: str | None = None  # webhook payload signatures
    waba_id: str | None = None  # WhatsApp Business Account: its approved templates are listed here
    # Cloud API only. "window": free-form text inside the recipient's customer-service window,
    # the mapped approved template outside it. "text": always try text first (for setups that
    # record no inbound messages), and the template only when Meta answers 131047.
    send_mode: str = "window"
    timeout_seconds: float = 15.0
    # The API-key gateway's request shape; see providers/gateway.py.
    gateway: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for a start-up log: which provider, where, as which number. Never a secret."""
        if self.provider is None:
            return "no provider (WHATSAPP_PROVIDER is not set)"
        if self.provider == "fake":
            return "provider fake: nothing reaches WhatsApp, every message is only marked sent"
        base = redact_url(self.base_url) if self.base_url else None
        if self.provider == "meta":
            return (f"provider meta (WhatsApp Cloud API {self.api_version}) at {base or 'https://graph.facebook.com'}, "
                    f"phone number id {self.phone_number_id or '(not set)'}")
        return f"provider gateway at {base or '(no WHATSAPP_API_BASE_URL)'}, sending number {self.sender or '(not set)'}"


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
    log_level: str = "info"
    # The status webhook: the largest body read (Meta's payloads are up to 3 MB), and how long
    # raw payloads are kept for `wanotify webhooks replay`.
    webhook_max_body_bytes: int = 3 * 1024 * 1024
    webhook_retention_days: float = 7.0
    # The Cloud API's customer-service window: free-form text only this long after the
    # recipient's own last message; outside it only an approved template.
    customer_window_seconds: float = 86_400.0
    # A reply that is one of these words (any case) opts the recipient out.
    opt_out_keywords: tuple[str, ...] = ("STOP", "BERHENTI")
    # Which messages an opt-out stops: "marketing" (transactional ones still go) or "all".
    opt_out_scope: str = "marketing"
    # How often a sender compares the local mappings with the account's templates (0: never).
    template_sync_seconds: float = 3600.0
    # Signs the admin console's session cookies (and the CSRF tokens inside them); required
    # when `run web` serves the console.
    web_secret_key: str | None = field(default=None, repr=False)
    # No two calls to one recipient, from any sender, closer than this (the Cloud API's pair rate).
    recipient_interval_seconds: float = 6.0
    # classic or quorum: the type of every durable queue (contract section 3).
    queue_type: str = "classic"
    # The rolling window of a sender's daily unique-recipient limit (tests shorten it).
    daily_window_seconds: float = 86_400.0
    # The `default` sender's daily unique-recipient limit (senders added with `wanotify senders`
    # carry their own); None: no limit.
    daily_limit: int | None = None
    # Published status events (contract section 9) are kept this long in status_outbox.
    status_retention_days: float = 7.0
    # The HTTP API's per-key token bucket: events (or reads) per second, and how many at once.
    api_rate_limit: float = 100.0
    api_rate_burst: int = 500
    whatsapp: WhatsAppSettings = field(default_factory=WhatsAppSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from environment variables (contract section 4)."""
        env = os.environ if env is None else env
        namespace = env.get("WANOTIFY_NAMESPACE", "wanotify") or "wanotify"
        if any(ch.isspace() for ch in namespace):
            raise ConfigError(f"WANOTIFY_NAMESPACE must not contain spaces, got {namespace!r}")
        gateway = {k[len("WHATSAPP_GATEWAY_"):].lower(): v for k, v in env.items() if k.startswith("WHATSAPP_GATEWAY_")}
        return cls(
            amqp_url=amqp_url((env.get("AMQP_URL") or "").strip() or DEFAULT_AMQP_URL),
            database_url=database_url((env.get("DATABASE_URL") or "").strip() or DEFAULT_DATABASE_URL),
            namespace=namespace,
            send_gap_seconds=_number(env, "SEND_GAP_SECONDS", 10.0, maximum=MAX_GAP_SECONDS),
            max_retries=_number(env, "MAX_RETRIES", 3, maximum=MAX_RETRIES_LIMIT),
            retry_delay_seconds=_number(env, "RETRY_DELAY_SECONDS", 300.0, maximum=MAX_RETRY_DELAY_SECONDS),
            retry_backoff=_number(env, "RETRY_BACKOFF", 1.0, minimum=1.0, maximum=10),
            default_region=_region(env),
            default_language=env.get("DEFAULT_LANGUAGE") or "id",
            metrics_port=_optional_int(env, "METRICS_PORT", maximum=65_535),
            quality_pause_seconds=_number(env, "QUALITY_PAUSE_SECONDS", 3600.0, maximum=7 * 86_400),
            retry_sweep_seconds=_number(env, "RETRY_SWEEP_SECONDS", 60.0, minimum=0.1, maximum=86_400),
            log_json=(env.get("LOG_FORMAT", "text").lower() == "json"),
            log_level=_log_level(env),
            webhook_max_body_bytes=_number(env, "WEBHOOK_MAX_BODY_BYTES", 3 * 1024 * 1024, minimum=1),
            webhook_retention_days=_number(env, "WEBHOOK_RETENTION_DAYS", 7.0),
            customer_window_seconds=_number(env, "CUSTOMER_WINDOW_SECONDS", 86_400.0, maximum=7 * 86_400),
            opt_out_keywords=_keywords(env.get("OPT_OUT_KEYWORDS")),
            opt_out_scope=_choice(env, "OPT_OUT_SCOPE", ("marketing", "all")),
            template_sync_seconds=_number(env, "TEMPLATE_SYNC_SECONDS", 3600.0, maximum=7 * 86_400),
            web_secret_key=env.get("WEB_SECRET_KEY") or None,
            recipient_interval_seconds=_number(env, "RECIPIENT_INTERVAL_SECONDS", 6.0, maximum=86_400),
            queue_type=_choice(env, "QUEUE_TYPE", QUEUE_TYPES),
            daily_window_seconds=_number(env, "DAILY_LIMIT_WINDOW_SECONDS", 86_400.0, minimum=1, maximum=7 * 86_400),
            daily_limit=_optional_int(env, "DAILY_LIMIT", maximum=10_000_000),
            status_retention_days=_number(env, "STATUS_RETENTION_DAYS", 7.0, maximum=366),
            api_rate_limit=_number(env, "API_RATE_LIMIT", 100.0, minimum=0.001, maximum=1_000_000),
            api_rate_burst=_number(env, "API_RATE_BURST", 500, minimum=1, maximum=1_000_000),
            whatsapp=WhatsAppSettings(
                provider=_provider(env),
                base_url=env.get("WHATSAPP_API_BASE_URL") or None,
                api_version=env.get("WHATSAPP_API_VERSION") or "v21.0",
                phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID") or None,
                access_token=env.get("WHATSAPP_ACCESS_TOKEN") or None,
                api_key=env.get("WHATSAPP_API_KEY") or None,
                sender=env.get("WHATSAPP_SENDER") or None,
                verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
                app_secret=env.get("WHATSAPP_APP_SECRET") or None,
                waba_id=env.get("WHATSAPP_WABA_ID") or None,
                send_mode=_choice(env, "WHATSAPP_SEND_MODE", ("window", "text")),
                timeout_seconds=_number(env, "WHATSAPP_TIMEOUT_SECONDS", 15.0, minimum=0.1, maximum=600),
                gateway=gateway,
            ),
        )

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and sub-commands use it)."""
        return replace(self, **changes)

    def require_provider(self) -> str:
        """The provider to send with; ConfigError when none was chosen (contract section 4).

        Called before anything sends: a deploy that forgot WHATSAPP_PROVIDER must refuse to
        start rather than "send" every message to nobody.
        """
        if self.whatsapp.provider is None:
            raise ConfigError(PROVIDER_MISSING)
        return self.whatsapp.provider
