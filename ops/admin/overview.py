"""Everything the console's overview shows, as one plain dictionary (the database part), and
the queue depths apart (the broker part), so the page still shows the first when RabbitMQ is
unreachable.

Every figure is read with an index or from the hourly activity rows: the page stays fast with
millions of logged messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.ops.admin import activity, status
from wanotify.shared.config import Settings
from wanotify.shared.db.models import MessageLog, SenderProcess, Status
from wanotify.shared.monitoring import QueueProbe, drain_seconds, monitored_queues, next_queued, tally_waiting
from wanotify.shared.phone import mask_phone
from wanotify.shared.runtime import load
from wanotify.shared.topology import Topology

NEXT = 10
ALIVE_WITHIN = timedelta(seconds=5)  # a sender process heartbeats every second


def overview(session: Session, settings: Settings) -> dict[str, Any]:
    """The whole overview in one transaction. (The console reads its three parts side by side,
    each in its own transaction: the two counts over the log then overlap.)"""
    return {**current(session, settings), **outcomes(session), **history(session, settings)}


def current(session: Session, settings: Settings) -> dict[str, Any]:
    """The sender's state, what waits, and the next messages with their ETA."""
    now = activity.now_utc(session)
    gap = load(session, settings).gap_seconds
    sender = status.sender_state(session, settings.namespace, gap)
    waiting = tally_waiting(session).by_priority
    backlog = sum(waiting.values())
    slot = _next_slot(sender, gap, now)
    alive = _alive(session, now)
    return {
        "now": now,
        "sender": {**sender, **slot, "state": _state(sender, backlog, alive), "alive": alive},
        "backlog": {"waiting": backlog, "by_priority": waiting, "drain_seconds": drain_seconds(backlog, gap)},
        "next": upcoming(session, slot["next_slot_at"], gap, now),
    }


def outcomes(session: Session) -> dict[str, Any]:
    """Failed and dead messages now, and sent, failed and dead today."""
    return {"counts": _failed_and_dead(session), "today": activity.today(session, activity.now_utc(session))}


def history(session: Session, settings: Settings) -> dict[str, Any]:
    """Sent, failed and dead per hour and per day, and the actual gaps of the latest calls."""
    now = activity.now_utc(session)
    return {"hourly": activity.hourly(session, now), "daily": activity.daily(session, now),
            "gaps": activity.gaps(session, load(session, settings).gap_seconds)}


def queues(settings: Settings, probe: QueueProbe) -> list[dict[str, Any]]:
    """Depth and consumers of every queue; raises whatever the broker connection raises."""
    names = monitored_queues(Topology.of(settings))
    return [{"name": q.name, "ready": q.ready, "consumers": q.consumers} for q in probe.stats(names)]


def upcoming(session: Session, first_at: datetime | None, gap: float, now: datetime,
             limit: int = NEXT) -> list[dict[str, Any]]:
    """The next messages to go out (by priority, then first in first out), each with its ETA.

    The ETA assumes one call per gap from the next slot on (None while the sender is paused by hand).
    """
    rows = next_queued(session, limit)
    etas = [None if first_at is None else first_at + timedelta(seconds=i * gap) for i in range(len(rows))]
    return [{"id": m.id, "template": m.template, "priority": m.priority, "recipient": mask_phone(m.recipient),
             "queued_at": m.queued_at, "eta": eta, "eta_in_seconds": _seconds_after(eta, now)}
            for m, eta in zip(rows, etas, strict=True)]


def _next_slot(sender: dict[str, Any], gap: float, now: datetime) -> dict[str, Any]:
    """When the next call may start: after the gap, after a quality pause; unknown when paused by hand."""
    by_hand = sender.get("paused") == "by_hand" or (sender["paused_until"] is not None and "by hand" in
                                                    (sender["pause_reason"] or ""))
    paused_for = _seconds_after(sender["paused_until"], now)
    if by_hand:
        return {"next_slot_at": None, "next_slot_in_seconds": None, "paused_by_hand": True, "paused_for_seconds": None}
    at = now
    if sender["last_call_at"] is not None:
        at = max(at, sender["last_call_at"] + timedelta(seconds=gap))
    if sender["paused_until"] is not None:
        at = max(at, sender["paused_until"])
    return {"next_slot_at": at, "next_slot_in_seconds": _seconds_after(at, now), "paused_by_hand": False,
            "paused_for_seconds": paused_for}


def _seconds_after(at: datetime | None, now: datetime) -> float | None:
    """Seconds from ``now`` to ``at`` (0 when it is past), None when there is no ``at``."""
    return None if at is None else max(0.0, (at - now).total_seconds())


def _state(sender: dict[str, Any], backlog: int, alive: int) -> str:
    if sender["paused_until"] is not None:
        return "paused"
    if backlog == 0:
        return "idle"
    return "sending" if alive else "stopped"  # messages wait, but no sender process is running


def _alive(session: Session, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(SenderProcess).where(
        SenderProcess.stopped_at.is_(None), SenderProcess.seen_at > now - ALIVE_WITHIN)) or 0


def _failed_and_dead(session: Session) -> dict[str, int]:
    kinds = (Status.FAILED, Status.DEAD)
    row = session.execute(select(*(func.count().filter(MessageLog.status == k) for k in kinds))
                          .where(MessageLog.status.in_(kinds))).one()
    return {k.value: n for k, n in zip(kinds, row, strict=True)}
