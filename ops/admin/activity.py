"""What happened, over time: sent, failed and dead per hour and per day, and the actual gaps.

The counts come from ``message_activity`` (hourly rows kept by a trigger on the message log,
migration 0008), so a chart over 30 days reads at most 2,160 small rows whatever the size of
the log. Hours and days are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.shared.db.models import Attempt, MessageActivity, MessageLog
from wanotify.shared.topology import DEFAULT_SENDER

OUTCOMES = ("sent", "failed", "dead")
GAP_SAMPLE = 500  # the latest calls the gap distribution is drawn from
GAP_BINS = 24


def now_utc(session: Session) -> datetime:
    """The database's clock: the one the trigger and the sender stamp their rows with."""
    return session.execute(select(func.now())).scalar_one().astimezone(UTC)


def hourly(session: Session, now: datetime, hours: int = 24) -> dict[str, Any]:
    """Counts for each of the last ``hours`` hours, the current one included."""
    end = now.replace(minute=0, second=0, microsecond=0)
    slots = [end - timedelta(hours=hours - 1 - i) for i in range(hours)]
    return _series(slots, _counts(session, slots[0], "hour"))


def daily(session: Session, now: datetime, days: int = 30) -> dict[str, Any]:
    """Counts for each of the last ``days`` days (UTC), today included."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    slots = [today - timedelta(days=days - 1 - i) for i in range(days)]
    return _series(slots, _counts(session, slots[0], "day"))


def today(session: Session, now: datetime) -> dict[str, int]:
    """Sent, failed and dead since midnight UTC."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = session.execute(select(MessageActivity.outcome, func.sum(MessageActivity.count))
                           .where(MessageActivity.hour >= midnight).group_by(MessageActivity.outcome))
    return {o: 0 for o in OUTCOMES} | {outcome: int(n) for outcome, n in rows}


def _counts(session: Session, since: datetime, unit: str) -> dict[tuple[datetime, str], int]:
    """Summed in the database per ``unit`` (hour or day, UTC): at most 90 rows come back for 30 days."""
    slot = func.date_trunc(unit, MessageActivity.hour, "UTC")
    rows = session.execute(select(slot, MessageActivity.outcome, func.sum(MessageActivity.count))
                           .where(MessageActivity.hour >= since).group_by(slot, MessageActivity.outcome))
    return {(at.astimezone(UTC), outcome): int(n) for at, outcome, n in rows}


def _series(slots: list[datetime], counts: dict[tuple[datetime, str], int]) -> dict[str, Any]:
    return {"at": slots, **{o: [counts.get((slot, o), 0) for slot in slots] for o in OUTCOMES}}


def gaps(session: Session, settings: Mapping[str, float], default: float, sample: int = GAP_SAMPLE) -> dict[str, Any]:
    """The actual gaps between the starts of the latest calls from the same number, as a
    histogram over their range; ``settings`` is each sender's gap (``default`` for one not there).

    Only a number's own calls are paced: two numbers of a pool may call within the same
    millisecond, so a gap is always measured to the previous call of the same sender. Gaps
    longer than twice their setting are idle time, not pacing: they are counted apart. The bins
    span the paced gaps themselves (at least 10 ms), so a sender that keeps the gap within a
    few milliseconds shows how many. The setting shown is the shortest of the senders that called.
    """
    calls = session.execute(select(func.coalesce(MessageLog.sender, DEFAULT_SENDER), Attempt.started_at)
                            .join(MessageLog, MessageLog.id == Attempt.log_id)
                            .order_by(Attempt.id.desc()).limit(sample)).all()
    starts: dict[str, list[datetime]] = {}
    for sender, started_at in calls:
        starts.setdefault(sender, []).append(started_at)
    measured = [((b - a).total_seconds(), settings.get(sender, default))
                for sender, times in starts.items() for a, b in pairwise(sorted(times))]
    paced = sorted(s for s, gap in measured if s <= max(2 * gap, 0.1))
    setting = min((settings.get(sender, default) for sender in starts), default=default)
    low = min(paced[0], setting) if paced else setting
    width = max((paced[-1] if paced else low) - low, 0.01) / GAP_BINS
    bins = [0] * GAP_BINS
    for s in paced:
        bins[min(int((s - low) / width), GAP_BINS - 1)] += 1
    return {"setting": setting, "senders": len(starts), "calls": len(calls), "idle": len(measured) - len(paced),
            "early": sum(1 for s, gap in measured if s < gap), "bin_seconds": width,
            "edges": [round(low + i * width, 4) for i in range(GAP_BINS)], "counts": bins,
            "min": paced[0] if paced else None, "median": paced[len(paced) // 2] if paced else None,
            "p99": paced[min(len(paced) - 1, int(len(paced) * 0.99))] if paced else None}
