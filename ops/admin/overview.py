"""Everything the console's overview shows, as one plain dictionary (the database part), and
the queue depths apart (the broker part), so the page still shows the first when RabbitMQ is
unreachable.

Every figure is read with an index or from the hourly activity rows: the page stays fast with
millions of logged messages.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.ops.admin import activity
from wanotify.shared.config import Settings
from wanotify.shared.db.models import MessageLog, SenderProcess, SenderState, Status
from wanotify.shared.monitoring import QueueProbe, next_queued, tally_waiting
from wanotify.shared.phone import mask_phone
from wanotify.shared.runtime import load
from wanotify.shared.sender_report import SenderReport, collect_senders, pool_drain, probe_names, queue_rows
from wanotify.shared.senders import SenderConfig, load_senders
from wanotify.shared.topology import DEFAULT_SENDER, Topology

NEXT = 10
ALIVE_WITHIN = timedelta(seconds=5)  # a sender process heartbeats every second


def overview(session: Session, settings: Settings) -> dict[str, Any]:
    """The whole overview in one transaction. (The console reads its three parts side by side,
    each in its own transaction: the two counts over the log then overlap.)"""
    return {**current(session, settings), **outcomes(session), **history(session, settings)}


def current(session: Session, settings: Settings) -> dict[str, Any]:
    """Each sender's state, the pool's as a whole, what waits, and the next messages with their ETA."""
    now = activity.now_utc(session)
    gap = load(session, settings).gap_seconds
    waiting = tally_waiting(session)
    reports = collect_senders(session, settings, gap, {}, waiting)
    last_calls = _last_calls(session, settings.namespace)
    senders = [_sender(r, last_calls.get(r.name), now) for r in reports]
    alive = _alive(session, now)
    return {
        "now": now,
        "sender": _pool(senders, waiting.total, alive),
        "senders": senders,
        "backlog": {"waiting": waiting.total, "by_priority": waiting.by_priority,
                    "drain_seconds": pool_drain(reports)},
        "next": upcoming(session, {s["name"]: s for s in senders}, now),
    }


def outcomes(session: Session) -> dict[str, Any]:
    """Failed and dead messages now, and sent, failed and dead today."""
    return {"counts": _failed_and_dead(session), "today": activity.today(session, activity.now_utc(session))}


def history(session: Session, settings: Settings) -> dict[str, Any]:
    """Sent, failed and dead per hour and per day, and the actual gaps of the latest calls."""
    now = activity.now_utc(session)
    runtime_gap = load(session, settings).gap_seconds
    gaps = {s.name: runtime_gap if s.gap_min_seconds is None else s.gap_min_seconds
            for s in load_senders(session, settings)}
    return {"hourly": activity.hourly(session, now), "daily": activity.daily(session, now),
            "gaps": activity.gaps(session, gaps, runtime_gap)}


def queues(settings: Settings, senders: list[SenderConfig], probe: QueueProbe) -> list[dict[str, Any]]:
    """Depth and consumers of every queue, each sender's send queues summed (as ``status`` shows
    them); raises whatever the broker connection raises."""
    topology = Topology.of(settings)
    stats = {q.name: q for q in probe.stats(probe_names(topology, senders))}
    return queue_rows(topology, senders, stats)


def upcoming(session: Session, senders: dict[str, dict[str, Any]], now: datetime,
             limit: int = NEXT) -> list[dict[str, Any]]:
    """The next messages to go out (by priority, then first in first out), each with its ETA.

    A message goes from its own sender (``senders`` by name, as ``_sender`` describes them): the
    ETA assumes one call per that sender's gap from its next slot on, so the n-th of its messages
    here goes n - 1 gaps after that slot (None while the sender is paused until resumed or disabled).
    """
    rows = next_queued(session, limit)
    seen: Counter[str] = Counter()
    shown = []
    for m in rows:
        name = m.sender or DEFAULT_SENDER
        sender = senders.get(name) or {"next_slot_at": None}  # a sender since removed: no slot
        first_at = sender["next_slot_at"]
        eta = None if first_at is None else first_at + timedelta(seconds=seen[name] * sender["gap_seconds"])
        seen[name] += 1
        shown.append({"id": m.id, "template": m.template, "priority": m.priority, "recipient": mask_phone(m.recipient),
                      "sender": name, "queued_at": m.queued_at, "eta": eta, "eta_in_seconds": _seconds_after(eta, now)})
    return shown


def _last_calls(session: Session, namespace: str) -> dict[str, datetime | None]:
    rows = session.execute(select(SenderState.sender, SenderState.last_call_at).where(SenderState.namespace == namespace))
    return {sender: at for sender, at in rows}


def _sender(report: SenderReport, last_call_at: datetime | None, now: datetime) -> dict[str, Any]:
    """One sender as the overview shows it: its state and pause, last call, next slot, gap and backlog."""
    return {"name": report.name, "state": report.state, "gap_seconds": report.gap_seconds,
            "gap_max_seconds": report.gap_max_seconds, "waiting": report.waiting,
            "pause_reason": report.pause_reason, "paused_until": report.paused_until,
            "until_resumed": report.until_resumed,
            "paused_for_seconds": None if report.until_resumed else _seconds_after(report.paused_until, now),
            "last_call_at": last_call_at,
            "seconds_since_last_call": None if last_call_at is None else (now - last_call_at).total_seconds(),
            **_next_slot(report, last_call_at, now)}


def _next_slot(report: SenderReport, last_call_at: datetime | None, now: datetime) -> dict[str, Any]:
    """When its next call may start: after its gap, after its pause; unknown when paused until
    resumed or disabled (until someone resumes or enables it)."""
    if report.until_resumed or report.state == "disabled":
        return {"next_slot_at": None, "next_slot_in_seconds": None}
    at = now
    if last_call_at is not None:
        at = max(at, last_call_at + timedelta(seconds=report.gap_seconds))
    if report.paused_until is not None:
        at = max(at, report.paused_until)
    return {"next_slot_at": at, "next_slot_in_seconds": _seconds_after(at, now)}


def _pool(senders: list[dict[str, Any]], backlog: int, alive: int) -> dict[str, Any]:
    """The pool as a whole: *paused* when no sender that is not disabled may send, else *idle*
    with nothing waiting, *sending* with a sender process alive, *stopped* without one. With one
    sender, its own figures come along, as the page shows them."""
    usable = [s for s in senders if s["state"] != "disabled"]
    if usable and all(s["state"] == "paused" for s in usable):
        state = "paused"
    elif not usable:
        state = "disabled"
    elif backlog == 0:
        state = "idle"
    else:
        state = "sending" if alive else "stopped"
    pool = {"state": state, "alive": alive, "senders": len(senders),
            "by_state": dict(Counter(s["state"] for s in senders))}
    return {**senders[0], **pool} if len(senders) == 1 else pool


def _seconds_after(at: datetime | None, now: datetime) -> float | None:
    """Seconds from ``now`` to ``at`` (0 when it is past), None when there is no ``at``."""
    return None if at is None else max(0.0, (at - now).total_seconds())


def _alive(session: Session, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(SenderProcess).where(
        SenderProcess.stopped_at.is_(None), SenderProcess.seen_at > now - ALIVE_WITHIN)) or 0


def _failed_and_dead(session: Session) -> dict[str, int]:
    kinds = (Status.FAILED, Status.DEAD)
    row = session.execute(select(*(func.count().filter(MessageLog.status == k) for k in kinds))
                          .where(MessageLog.status.in_(kinds))).one()
    return {k.value: n for k, n in zip(kinds, row, strict=True)}
