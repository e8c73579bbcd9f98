"""A broadcast's ETA: the pool as it stands now, fed to the capacity model (``shared/capacity.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.shared.capacity import SenderLoad, estimate_drain
from wanotify.shared.config import Settings
from wanotify.shared.db.models import SenderContact, SenderState
from wanotify.shared.runtime import load
from wanotify.shared.senders import SenderConfig


def estimate_seconds(session: Session, settings: Settings, senders: Sequence[SenderConfig], messages: int,
                     *, urgent: bool = False) -> float | None:
    """Seconds until ``messages`` to as many recipients are sent by ``senders`` (one message per
    row, so the recipient interval never binds); None if no sender may send."""
    loads = sender_loads(session, settings, senders, datetime.now(UTC), urgent=urgent)
    return estimate_drain(loads, messages, messages, settings.recipient_interval_seconds,
                          settings.daily_window_seconds).seconds


def sender_loads(session: Session, settings: Settings, senders: Sequence[SenderConfig], now: datetime,
                 *, urgent: bool = False) -> list[SenderLoad]:
    """Each sender's mean gap, the part of its daily limit a message may use (the reserve is
    for high priority only), the recipients it reached in the window, and its pause."""
    runtime_gap = load(session, settings).gap_seconds
    since = now - timedelta(seconds=settings.daily_window_seconds)
    names = [s.name for s in senders]
    used = dict(session.execute(select(SenderContact.sender, func.count()).where(
        SenderContact.sender.in_(names), SenderContact.first_at > since).group_by(SenderContact.sender)).all())
    paused = dict(session.execute(select(SenderState.sender, SenderState.paused_until).where(
        SenderState.namespace == settings.namespace, SenderState.sender.in_(names),
        SenderState.paused_until > now)).all())
    return [sender_load(s, runtime_gap, now, used.get(s.name, 0), paused.get(s.name), urgent) for s in senders]


def sender_load(sender: SenderConfig, runtime_gap: float, now: datetime, used: int, paused_until: datetime | None,
                urgent: bool) -> SenderLoad:
    """One sender as the capacity model sees it (``sender_loads`` reads what it needs)."""
    low = runtime_gap if sender.gap_min_seconds is None else sender.gap_min_seconds
    high = sender.gap_max_seconds if sender.gap_max_seconds and sender.gap_max_seconds > low else low
    limit = sender.limit_on(now)
    if limit is not None and not urgent:
        limit = max(0, limit - sender.daily_reserve)
    paused_for = (paused_until - now).total_seconds() if paused_until else 0.0
    return SenderLoad(sender.name, (low + high) / 2, limit, used, paused_for)
