"""Each sender as an operator sees it: its state, gap, lease, queues, daily usage and held messages.

Read the same way by ``wanotify status`` and by every process's metrics (``consumers/monitor``).
A handful of grouped queries serve every sender at once (one more per sender at its daily
limit, for its ETA), so 50 senders cost what one does; the broker's queue figures come from
the caller's probe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.shared.capacity import SenderLoad, allowance, must_leave, sender_drain, window_eta
from wanotify.shared.config import Settings
from wanotify.shared.db.models import WAITING_STATUSES, MessageLog, SenderContact, SenderProcess, SenderState
from wanotify.shared.monitoring import QueueStats, Waiting, monitored_queues
from wanotify.shared.priority import Priority
from wanotify.shared.senders import SenderConfig, load_senders
from wanotify.shared.topology import DEFAULT_SENDER, PRIORITY_ORDER, Topology

# A pause by hand carries this reason prefix (ops/admin/pausing.py); any other pause is Meta's.
BY_HAND = "paused by hand"
# A pause by hand this long or longer reads as "until resumed" (a timed one shows its end).
INDEFINITE_AFTER = timedelta(days=365 * 50)


@dataclass(frozen=True)
class Daily:
    used: int  # unique recipients counted in the rolling window
    limit: int | None  # today's limit (warm-up step or daily_limit); None: none
    reserve: int  # of it, kept for high priority
    eta_seconds: float | None  # when full for normal messages: until a new recipient fits

    @property
    def full(self) -> bool:
        return self.eta_seconds is not None


@dataclass(frozen=True)
class Held:
    reason: str  # recipient_interval, pair_rate, daily_limit
    count: int
    next_due: datetime


@dataclass(frozen=True)
class SenderReport:
    name: str
    provider: str
    state: str  # active, paused, disabled
    paused_until: datetime | None
    pause_reason: str | None
    until_resumed: bool  # paused by hand with no end: only a resume lifts it
    gap_seconds: float
    gap_max_seconds: float | None
    lease_holder: str | None  # the process id holding the lease, if it is still valid
    lease_process: str | None  # host:pid of that process, when known
    consumers: int | None  # on its busiest send queue; None: its queues do not exist yet
    ready: dict[str, int | None]  # per priority, on the broker
    waiting: int  # queued or failed in the message log
    waiting_recipients: int  # their distinct recipients
    daily: Daily
    held: list[Held] = field(default_factory=list)
    drain_seconds: float | None = 0.0

    @property
    def consumer_attached(self) -> bool:
        return bool(self.consumers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "provider": self.provider, "state": self.state,
            "paused_until": self.paused_until, "pause_reason": self.pause_reason,
            "pause_kind": pause_kind(self.pause_reason) if self.state == "paused" else None,
            "until_resumed": self.until_resumed,
            "gap_seconds": self.gap_seconds, "gap_max_seconds": self.gap_max_seconds,
            "lease_holder": self.lease_holder, "lease_process": self.lease_process,
            "consumers": self.consumers, "consumer_attached": self.consumer_attached,
            "queues": self.ready, "waiting": self.waiting,
            "daily": {"used": self.daily.used, "limit": self.daily.limit, "reserve": self.daily.reserve,
                      "full": self.daily.full, "eta_seconds": self.daily.eta_seconds},
            "held": [{"reason": h.reason, "count": h.count, "next_due": h.next_due} for h in self.held],
            "drain_seconds": self.drain_seconds,
        }


def probe_names(topology: Topology, senders: list[SenderConfig]) -> list[str]:
    """The fixed queues and every sender's send queues, each once."""
    names = monitored_queues(topology)
    extra = [q for s in senders if s.name != DEFAULT_SENDER for q in topology.send_queues(s.name)]
    return names + [q for q in extra if q not in names]


def queue_rows(topology: Topology, senders: list[SenderConfig], stats: Mapping[str, QueueStats]) -> list[dict[str, Any]]:
    """One row per queue, a sender's three send queues summed under its prefix
    (``{ns}.send`` for ``default``): ready messages added, consumers the busiest queue's."""
    own = {q: s for s in {DEFAULT_SENDER, *(s.name for s in senders)} for q in topology.send_queues(s)}
    rows: list[dict[str, Any]] = []
    shown: set[str] = set()
    for name in probe_names(topology, senders):
        sender = own.get(name)
        if sender is None:
            rows.append(_row(name, [stats.get(name)]))
        elif sender not in shown:
            shown.add(sender)
            rows.append(_row(topology.sender_queue_prefix(sender), [stats.get(q) for q in topology.send_queues(sender)]))
    return rows


def _row(name: str, parts: list[QueueStats | None]) -> dict[str, Any]:
    present = [p for p in parts if p is not None and p.ready is not None]
    if not present:
        return {"name": name, "ready": None, "consumers": None}
    return {"name": name, "ready": sum(p.ready or 0 for p in present),
            "consumers": max(p.consumers or 0 for p in present)}


def collect_senders(session: Session, settings: Settings, runtime_gap: float, stats: Mapping[str, QueueStats],
                    waiting: Waiting, senders: list[SenderConfig] | None = None) -> list[SenderReport]:
    """One report per sender (disabled ones too), in name order; ``stats`` by queue name,
    ``waiting`` as the caller counted it (``tally_waiting``, or a ``census``'s)."""
    senders = load_senders(session, settings) if senders is None else senders
    now: datetime = session.scalar(select(func.now()))  # type: ignore[assignment]
    window = settings.daily_window_seconds
    states = _states(session, settings.namespace)
    per_sender = _waiting(session, waiting.by_sender)
    used = _used(session, now - timedelta(seconds=window))
    held = _held(session, now)
    topology = Topology.of(settings)
    reports = []
    for sender in senders:
        state, process = states.get(sender.name, (None, None))
        queues = [stats.get(name) for name in topology.send_queues(sender.name)]
        daily = _daily(session, sender, used.get(sender.name, 0), now, window)
        messages, recipients = per_sender.get(sender.name, (0, 0))
        report = SenderReport(
            name=sender.name, provider=sender.provider, **_state_of(sender, state, now),
            gap_seconds=runtime_gap if sender.gap_min_seconds is None else sender.gap_min_seconds,
            gap_max_seconds=sender.gap_max_seconds,
            **_lease(state, process, now),
            consumers=_max_consumers(queues),
            ready={p.value: (q.ready if q else None) for p, q in zip(PRIORITY_ORDER, queues, strict=True)},
            waiting=messages, waiting_recipients=recipients, daily=daily, held=held.get(sender.name, []))
        drain = sender_drain(load_of(report, now), messages, recipients, settings.recipient_interval_seconds, window)
        reports.append(replace(report, drain_seconds=drain.seconds))
    return reports


def pool_drain(reports: list[SenderReport]) -> float | None:
    """Seconds until the whole backlog is sent (None: a sender holding waiting messages may not send).

    A waiting message is already routed to its sender, and a recipient sticks to one: no other
    number takes it over, so the backlog is done when the slowest sender has sent its own share
    (``drain_seconds``: its gap, daily limit, pause and the recipient interval). The pool-wide
    model of ``capacity.estimate_drain`` is for recipients not routed yet (a broadcast)."""
    drains = [r.drain_seconds for r in reports if r.waiting]
    if any(d is None for d in drains):
        return None
    return max((d for d in drains if d is not None), default=0.0)


def load_of(report: SenderReport, now: datetime) -> SenderLoad:
    """The sender as the capacity model sees it (a jittered gap by its mean, the limit without the reserve)."""
    gap = report.gap_seconds if report.gap_max_seconds is None else (report.gap_seconds + report.gap_max_seconds) / 2
    paused_for = 0.0
    if report.state == "disabled":
        paused_for = math.inf
    elif report.state == "paused" and report.paused_until is not None:
        paused_for = max(0.0, (report.paused_until - now).total_seconds())
    # Most of a backlog is normal or low: the reserve for high priority is not theirs.
    limit = allowance(report.daily.limit, report.daily.reserve, Priority.NORMAL)
    return SenderLoad(report.name, gap, limit, report.daily.used, paused_for)


def _states(session: Session, namespace: str) -> dict[str, tuple[SenderState, SenderProcess | None]]:
    rows = session.execute(
        select(SenderState, SenderProcess).outerjoin(SenderProcess, SenderProcess.sender_id == SenderState.lease_holder)
        .where(SenderState.namespace == namespace)).all()
    return {state.sender: (state, process) for state, process in rows}


# Distinct recipients are counted exactly up to this many waiting messages, and estimated from
# this many beyond. With a million waiting, an exact count took half a second; a sample of
# 100,000 took 0.16 s (its sort spilled to disk), one of 20,000 took 17 ms.
RECIPIENT_SAMPLE = 20_000


def _waiting(session: Session, messages: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Per sender: its waiting ``messages`` (``Waiting.by_sender``), and their distinct recipients.

    With more than ``RECIPIENT_SAMPLE`` waiting, the recipients are estimated: each sender's
    share of distinct recipients among the first ``RECIPIENT_SAMPLE`` waiting rows (in the
    table's order), times its messages. The drain estimate only needs their proportion."""
    name = func.coalesce(MessageLog.sender, DEFAULT_SENDER)
    sample = (select(name.label("sender"), MessageLog.recipient).where(MessageLog.status.in_(WAITING_STATUSES))
              .limit(RECIPIENT_SAMPLE).subquery())
    sampled = session.execute(select(sample.c.sender, func.count(), func.count(sample.c.recipient.distinct()))
                              .group_by(sample.c.sender)).all()
    share = {sender: distinct / rows for sender, rows, distinct in sampled}
    return {sender: (count, max(1, round(count * share.get(sender, 1.0))))
            for sender, count in messages.items() if count}


def _used(session: Session, since: datetime) -> dict[str, int]:
    rows = session.execute(select(SenderContact.sender, func.count()).where(SenderContact.first_at > since)
                           .group_by(SenderContact.sender)).all()
    return {row[0]: row[1] for row in rows}


def _held(session: Session, now: datetime) -> dict[str, list[Held]]:
    """Messages deferred by the budget and not yet due, per sender and reason."""
    name = func.coalesce(MessageLog.sender, DEFAULT_SENDER)
    rows = session.execute(
        select(name, MessageLog.held_reason, func.count(), func.min(MessageLog.held_until))
        .where(MessageLog.status.in_(WAITING_STATUSES), MessageLog.held_until > now)
        .group_by(name, MessageLog.held_reason).order_by(name, MessageLog.held_reason)).all()
    held: dict[str, list[Held]] = {}
    for sender, reason, count, next_due in rows:
        if next_due is not None:  # always: the rows are those held until a time
            held.setdefault(sender, []).append(Held(reason or "deferred", count, next_due))
    return held


def _daily(session: Session, sender: SenderConfig, used: int, now: datetime, window: float) -> Daily:
    limit = sender.limit_on(now)
    leaving = must_leave(used, allowance(limit, sender.daily_reserve, Priority.NORMAL))
    if leaving == 0:
        return Daily(used, limit, sender.daily_reserve, None)
    oldest = None
    if leaving <= used:
        oldest = session.scalar(
            select(SenderContact.first_at)
            .where(SenderContact.sender == sender.name, SenderContact.first_at > now - timedelta(seconds=window))
            .order_by(SenderContact.first_at).offset(leaving - 1).limit(1))
    return Daily(used, limit, sender.daily_reserve, window_eta(oldest, now, window))


def _state_of(sender: SenderConfig, state: SenderState | None, now: datetime) -> dict[str, Any]:
    if sender.disabled:
        return {"state": "disabled", "paused_until": None, "pause_reason": None, "until_resumed": False}
    if state is not None and state.paused_until is not None and state.paused_until > now:
        return {"state": "paused", "paused_until": state.paused_until, "pause_reason": state.pause_reason,
                "until_resumed": until_resumed(state.pause_reason, state.paused_until, now)}
    return {"state": "active", "paused_until": None, "pause_reason": None, "until_resumed": False}


def pause_kind(reason: str | None) -> str:
    """``by_hand`` for an admin's pause, ``quality`` for one Meta's quality or policy code caused."""
    return "by_hand" if (reason or "").startswith(BY_HAND) else "quality"


def until_resumed(reason: str | None, paused_until: datetime, now: datetime) -> bool:
    """Whether a pause in force lasts until someone resumes it: by hand, and with no end in sight."""
    return pause_kind(reason) == "by_hand" and paused_until - now >= INDEFINITE_AFTER


def _lease(state: SenderState | None, process: SenderProcess | None, now: datetime) -> dict[str, Any]:
    if state is None or state.lease_holder is None or state.lease_expires_at is None or state.lease_expires_at <= now:
        return {"lease_holder": None, "lease_process": None}
    where = f"{process.host}:{process.pid}" if process is not None else None
    return {"lease_holder": state.lease_holder, "lease_process": where}


def _max_consumers(queues: list[QueueStats | None]) -> int | None:
    counts = [q.consumers for q in queues if q is not None and q.consumers is not None]
    return max(counts) if counts else None
