"""Senders as data (contract section 7): ``wanotify senders list|show|add|set|disable`` and the
console's Senders page call these functions; ``pause``/``resume`` are ``pausing``'s, per
sender, and ``drain`` is in ``sender_drain``.

A sender row never holds a secret: ``--token-env`` and ``--api-key-env`` take the *name* of
the environment variable that holds it, and a value that looks like a token instead of a
variable name is refused, so a token pasted by mistake never reaches the database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.ops.admin.audit import record
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.admin.pausing import current_pause
from wanotify.shared.config import MAX_GAP_SECONDS, Settings
from wanotify.shared.db.models import WAITING_STATUSES, MessageLog, Recipient, Rule, SenderRow, SenderState
from wanotify.shared.senders import PROVIDER_KINDS, SenderConfig, describe_settings, load_senders
from wanotify.shared.topology import DEFAULT_SENDER, Topology, check_sender_name

# An environment variable's name as shells write them; a token (mixed case, long) never matches.
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
PHONE_NUMBER_ID = re.compile(r"^[0-9]{1,30}$")
SENDER_NUMBER = re.compile(r"^\+?[0-9]{5,20}$")
URL = re.compile(r"^https?://[^\s/]+\S*$")
MAX_WARMUP_DAYS = 90
SECRET_OPTIONS = {"token_env": "--token-env", "api_key_env": "--api-key-env"}
# Which settings each provider needs, and which it may take.
REQUIRED = {"meta": ("phone_number_id", "token_env"), "gateway": ("api_key_env", "sender_number"), "fake": ()}
ALLOWED = {"meta": {"phone_number_id", "token_env", "base_url", "api_version", "waba_id"},
           "gateway": {"api_key_env", "sender_number", "base_url"}, "fake": {"base_url"}}


@dataclass(frozen=True)
class SenderOptions:
    """What ``senders add`` and ``senders set`` may give; None leaves a field as it is."""

    provider: str | None = None
    phone_number_id: str | None = None
    token_env: str | None = None
    api_key_env: str | None = None
    sender_number: str | None = None
    base_url: str | None = None
    gap: float | None = None
    gap_min: float | None = None
    gap_max: float | None = None
    daily_limit: int | None = None
    daily_reserve: int | None = None
    warmup: tuple[int, ...] | None = None  # () clears the ramp
    enable: bool = False  # undo `senders disable`

    def settings(self) -> dict[str, str]:
        given = {key: getattr(self, key) for key in ("phone_number_id", "token_env", "api_key_env", "sender_number",
                                                     "base_url")}
        return {key: value.strip() for key, value in given.items() if value is not None}

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) not in (None, False)]


def parse_warmup(raw: str) -> tuple[int, ...]:
    """``250,500,1000`` as daily limits for day 1, 2, 3…; ``none`` (or nothing) clears the ramp."""
    if raw.strip().lower() in ("", "none"):
        return ()
    try:
        steps = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ActionRefused(f"--warmup {raw!r} is not a list of whole numbers: write daily limits like 250,500,1000") from None
    return steps


# --- validation ------------------------------------------------------------------------


def _check_env_name(option: str, value: str) -> None:
    if ENV_NAME.match(value):
        return
    looks_secret = len(value) >= 20 or any(c.islower() for c in value)
    hint = " — that looks like the secret itself: put it in an environment variable and give its name" if looks_secret else ""
    raise ActionRefused(f"{option} takes the name of an environment variable (like WA_TOKEN_SALES: A-Z, 0-9 and '_'), "
                        f"not {'a token' if looks_secret else repr(value)}{hint}; nothing was stored")


def check_settings(provider: str, settings: Mapping[str, str]) -> None:
    """``ActionRefused`` saying what is missing or wrong in a provider's settings."""
    if provider not in PROVIDER_KINDS:
        raise ActionRefused(f"--provider must be one of {', '.join(PROVIDER_KINDS)}, got {provider!r}")
    for key, option in SECRET_OPTIONS.items():
        if settings.get(key):
            _check_env_name(option, settings[key])
    stray = sorted(key for key in settings if settings[key] and key not in ALLOWED[provider])
    if stray:
        options = ", ".join("--" + key.replace("_", "-") for key in stray)
        raise ActionRefused(f"{options} is not used by a {provider} sender; leave it out")
    missing = [key for key in REQUIRED[provider] if not settings.get(key)]
    if missing:
        options = " and ".join("--" + key.replace("_", "-") for key in missing)
        raise ActionRefused(f"a {provider} sender needs {options}")
    if settings.get("phone_number_id") and not PHONE_NUMBER_ID.match(settings["phone_number_id"]):
        raise ActionRefused(f"--phone-number-id is the Cloud API's numeric id (Meta's WhatsApp Manager shows it), "
                            f"got {settings['phone_number_id']!r}")
    if settings.get("sender_number") and not SENDER_NUMBER.match(settings["sender_number"]):
        raise ActionRefused(f"--sender-number is the number in international form (like 628114040707), "
                            f"got {settings['sender_number']!r}")
    if settings.get("base_url") and not URL.match(settings["base_url"]):
        raise ActionRefused(f"--base-url must be an http(s) URL, got {settings['base_url']!r}")


def gap_range(options: SenderOptions, current: tuple[float | None, float | None]) -> tuple[float | None, float | None]:
    """(gap_min, gap_max) from ``--gap`` or ``--gap-min``/``--gap-max``; ``current`` if neither."""
    if options.gap is not None and (options.gap_min is not None or options.gap_max is not None):
        raise ActionRefused("give --gap S (a fixed gap) or --gap-min S --gap-max S (a random gap in that range), not both")
    if options.gap is not None:
        _check_gap("--gap", options.gap)
        return options.gap, None
    if options.gap_min is None and options.gap_max is None:
        return current
    if options.gap_min is None or options.gap_max is None:
        raise ActionRefused("a jittered gap needs both --gap-min and --gap-max (or one fixed --gap)")
    _check_gap("--gap-min", options.gap_min)
    _check_gap("--gap-max", options.gap_max)
    if options.gap_max < options.gap_min:
        raise ActionRefused(f"--gap-max ({options.gap_max:g}) is below --gap-min ({options.gap_min:g})")
    return options.gap_min, options.gap_max


def _check_gap(option: str, seconds: float) -> None:
    if not 0 < seconds <= MAX_GAP_SECONDS:
        raise ActionRefused(f"{option} is seconds between two calls, more than 0 and at most {MAX_GAP_SECONDS}, got {seconds:g}")


# Meta's highest fixed tier is 100,000 recipients a day (above it: unlimited, i.e. no limit here).
MAX_DAILY_LIMIT = 1_000_000


def check_limits(daily_limit: int | None, daily_reserve: int, warmup: tuple[int, ...]) -> None:
    if daily_limit is not None and not 1 <= daily_limit <= MAX_DAILY_LIMIT:
        raise ActionRefused(f"--daily-limit is unique recipients per 24 h, 1 to {MAX_DAILY_LIMIT:,} (leave it unset for "
                            f"no limit), got {daily_limit}")
    if daily_reserve < 0:
        raise ActionRefused(f"--daily-reserve cannot be negative, got {daily_reserve}")
    if daily_reserve and (daily_limit is None or daily_reserve >= daily_limit):
        raise ActionRefused(f"--daily-reserve ({daily_reserve}) is the part of --daily-limit kept for high-priority "
                            f"messages: it needs a daily limit above it (now {daily_limit})")
    if len(warmup) > MAX_WARMUP_DAYS or any(not 1 <= step <= MAX_DAILY_LIMIT for step in warmup):
        raise ActionRefused(f"--warmup takes 1 to {MAX_WARMUP_DAYS} daily limits of 1 to {MAX_DAILY_LIMIT:,}, "
                            "like 250,500,1000")


# --- changes -----------------------------------------------------------------------------


def add_sender(session: Session, actor: str, name: str, options: SenderOptions) -> dict[str, Any]:
    """Create a sender; returns its view and ``warnings`` for the admin."""
    try:
        check_sender_name(name)
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None
    if options.provider is None:
        raise ActionRefused("--provider is required: meta, gateway or fake")
    if session.get(SenderRow, name) is not None:
        raise ActionRefused(f"sender {name!r} exists already — `wanotify senders set {name} …` changes it")
    first = session.scalar(select(func.count()).select_from(SenderRow)) == 0
    row = SenderRow(name=name, provider=options.provider, settings={}, daily_reserve=0)
    _apply(row, options)
    session.add(row)
    session.flush()
    record(session, actor, "sender.add", target={"sender": name, "provider": row.provider}, count=1)
    warnings = []
    if first and name != DEFAULT_SENDER:
        warnings.append(f"senders are rows now: the environment's number ('default') no longer sends — add it as "
                        f"'default' too, or move what waits for it: `wanotify senders drain default --to {name}`")
    return {"sender": name, "warnings": warnings}


def set_sender(session: Session, actor: str, name: str, options: SenderOptions) -> dict[str, Any]:
    """Change the given fields of a sender (the others stay)."""
    row = _row(session, name, lock=True)
    changed = options.given()
    if not changed:
        raise ActionRefused("nothing to change: give at least one option (see `wanotify senders set --help`)")
    _apply(row, options)
    row.updated_at = func.now()
    record(session, actor, "sender.set", target={"sender": name, "fields": changed}, count=1)
    return {"sender": name, "changed": changed}


def _apply(row: SenderRow, options: SenderOptions) -> None:
    """Validate the row as it would be after ``options``, then change it."""
    provider = options.provider or row.provider
    settings = {k: v for k, v in (dict(row.settings or {}) | options.settings()).items() if v}
    if options.provider and options.provider != row.provider:  # a new kind keeps only what it uses
        settings = {k: v for k, v in settings.items() if k in ALLOWED[provider]} | options.settings()
    check_settings(provider, settings)
    gap_min, gap_max = gap_range(options, (row.gap_min_seconds, row.gap_max_seconds))
    daily_limit = options.daily_limit if options.daily_limit is not None else row.daily_limit
    reserve = options.daily_reserve if options.daily_reserve is not None else (row.daily_reserve or 0)
    warmup = options.warmup if options.warmup is not None else tuple(row.warmup or ())
    check_limits(daily_limit, reserve, warmup)
    row.provider, row.settings = provider, settings
    row.gap_min_seconds, row.gap_max_seconds = gap_min, gap_max
    row.daily_limit, row.daily_reserve, row.warmup = daily_limit, reserve, list(warmup) or None
    if options.enable:
        row.disabled_at = None


def disable_sender(session: Session, actor: str, name: str) -> dict[str, Any]:
    """Stop routing new messages to a sender: its recipients move to another one for their new
    messages. What waits in its queues stays until ``senders drain``."""
    row = _row(session, name, lock=True)
    if row.disabled_at is not None:
        return {"sender": name, "disabled": True, "already": True, "waiting": _waiting(session, name), "pinned_by": []}
    others = session.scalar(select(func.count()).where(SenderRow.disabled_at.is_(None), SenderRow.name != name))
    if not others:
        raise ActionRefused(f"{name!r} is the last active sender: every new message would be parked — add or enable "
                            "another sender first")
    row.disabled_at = func.now()
    pinned = list(session.scalars(select(Rule.event_type).where(Rule.sender == name, Rule.active).order_by(Rule.id)))
    record(session, actor, "sender.disable", target={"sender": name}, count=1)
    return {"sender": name, "disabled": True, "already": False, "waiting": _waiting(session, name), "pinned_by": pinned}


def _row(session: Session, name: str, *, lock: bool = False) -> SenderRow:
    row = session.get(SenderRow, name, with_for_update=lock)
    if row is None:
        known = ", ".join(session.scalars(select(SenderRow.name).order_by(SenderRow.name))) or "none yet"
        raise ActionRefused(f"there is no sender {name!r} (senders: {known}) — `wanotify senders add {name} …` adds it")
    return row


def _waiting(session: Session, name: str) -> int:
    return session.scalar(select(func.count()).where(MessageLog.sender == name, MessageLog.status.in_(WAITING_STATUSES))) or 0


# --- views -------------------------------------------------------------------------------


def list_senders(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every sender with its state, pace and load (the environment's ``default`` when there are no rows)."""
    now = session.scalar(select(func.now()))
    assert now is not None
    configs = load_senders(session, settings)
    names = [c.name for c in configs]
    waiting = dict(session.execute(select(MessageLog.sender, func.count()).where(
        MessageLog.sender.in_(names), MessageLog.status.in_(WAITING_STATUSES)).group_by(MessageLog.sender)).all())
    sticking = dict(session.execute(select(Recipient.sender, func.count()).where(
        Recipient.sender.in_(names)).group_by(Recipient.sender)).all())
    states = {s.sender: s for s in session.scalars(select(SenderState).where(
        SenderState.namespace == settings.namespace, SenderState.sender.in_(names)))}
    return [_summary(c, settings, now, states.get(c.name), waiting.get(c.name, 0), sticking.get(c.name, 0))
            for c in configs]


def _summary(config: SenderConfig, settings: Settings, now: datetime, state: SenderState | None,
             waiting: int, recipients: int) -> dict[str, Any]:
    pause = current_pause(state, now)
    status = "disabled" if config.disabled else "paused" if pause else "active"
    low = settings.send_gap_seconds if config.gap_min_seconds is None else config.gap_min_seconds
    return {
        "name": config.name, "provider": config.provider or None, "state": status,
        "gap_seconds": low if config.gap_max_seconds is None else [low, config.gap_max_seconds],
        "daily_limit": config.daily_limit, "daily_limit_today": config.limit_on(now), "daily_reserve": config.daily_reserve,
        "warmup": list(config.warmup), "waiting": waiting, "recipients": recipients,
        "pause": pause.as_dict() if pause else None, "from_environment": config.from_environment,
    }


def show_sender(session: Session, settings: Settings, name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One sender in full: its settings by variable name, whether each secret variable is set
    here (never its value), its queues, and its load."""
    rows = [row for row in list_senders(session, settings) if row["name"] == name]
    if not rows:
        _row(session, name)  # raises with the list of senders
    config = next(c for c in load_senders(session, settings) if c.name == name)
    env = os.environ if env is None else env
    secrets = {config.settings[key]: bool(env.get(config.settings[key])) for key in SECRET_OPTIONS
               if config.settings.get(key)}
    row = session.get(SenderRow, name)
    return rows[0] | {
        "settings": describe_settings(config), "secret_variables_set": secrets,
        "queues": Topology.of(settings).send_queues(name),
        "disabled_at": row.disabled_at if row else None, "created_at": row.created_at if row else None,
    }


def sender_names(session: Session) -> list[str]:
    """The senders' names (``default`` alone when there are no rows)."""
    return list(session.scalars(select(SenderRow.name).order_by(SenderRow.name))) or [DEFAULT_SENDER]

