"""Everything ``wanotify status`` shows, as one plain dictionary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.ops.admin.meta_status import collect_meta, render_meta
from wanotify.ops.admin.pausing import current_pause
from wanotify.ops.admin.sender_status import duration, render_senders
from wanotify.shared.config import Settings
from wanotify.shared.db.models import SenderState
from wanotify.shared.monitoring import QueueProbe, census, next_messages
from wanotify.shared.runtime import load
from wanotify.shared.sender_report import collect_senders, pool_drain, probe_names, queue_rows
from wanotify.shared.senders import load_senders
from wanotify.shared.topology import DEFAULT_SENDER, Topology
from wanotify.shared.urls import amqp_hosts


def collect(settings: Settings, session: Session, probe: QueueProbe) -> dict[str, Any]:
    topology = Topology.of(settings)
    senders = load_senders(session, settings)
    stats = {q.name: q for q in probe.stats(probe_names(topology, senders))}
    runtime = load(session, settings)
    counted = census(session)
    reports = collect_senders(session, settings, runtime.gap_seconds, stats, counted.waiting, senders)
    return {
        "namespace": settings.namespace,
        # classic or quorum (QUEUE_TYPE), and the nodes AMQP_URL lists
        "queue_type": settings.queue_type,
        "brokers": amqp_hosts(settings.amqp_url).split(", "),
        "queues": queue_rows(topology, senders, stats),
        "sender": _sender(session, settings.namespace, runtime.gap_seconds),
        # each sender: state, gap, lease, queues, daily usage (ETA when full), held messages
        "senders": [r.as_dict() for r in reports],
        "backlog": {"waiting": counted.waiting.total, "by_priority": counted.waiting.by_priority,
                    "drain_seconds": pool_drain(reports)},
        "statuses": counted.statuses,
        "next": next_messages(session),
        "meta": collect_meta(session),  # what Meta said of the numbers and the mapped templates
    }


def _sender(session: Session, namespace: str, gap: float) -> dict[str, Any]:
    state = session.get(SenderState, (namespace, DEFAULT_SENDER))
    now: datetime = session.scalar(select(func.now())) or datetime.now(UTC)
    pause = current_pause(state, now)
    return {
        "gap_seconds": gap,
        "last_call_at": state.last_call_at if state else None,
        "seconds_since_last_call": (now - state.last_call_at).total_seconds() if state and state.last_call_at else None,
        "paused_until": state.paused_until if pause and state else None,
        "pause_reason": pause.reason if pause else None,
        "paused": None if pause is None else "by_hand" if pause.by_hand else "quality",
    }


def render(status: dict[str, Any]) -> str:
    header = f"{'QUEUE':<40} {'READY':>6}  CONSUMERS"
    lines = [f"wanotify status — namespace {status['namespace']}",
             f"{status['queue_type']} queues on {', '.join(status['brokers'])}", "", header]
    for q in status["queues"]:
        ready = "absent" if q["ready"] is None else q["ready"]
        lines.append(f"{q['name']:<40} {ready!s:>6}  {q['consumers'] if q['consumers'] is not None else '-':>9}")
    s, b = status["sender"], status["backlog"]
    last = "never" if s["last_call_at"] is None else f"{s['seconds_since_last_call']:.1f} s ago"
    lines += ["", f"sender: gap {s['gap_seconds']} s, last call {last}"
              + _pause_text(s)]
    by = ", ".join(f"{k} {v}" for k, v in b["by_priority"].items())
    lines += render_senders(status.get("senders", []))
    lines.append(f"backlog: {b['waiting']} waiting ({by}); drains in about {duration(b['drain_seconds'])}")
    lines.append("messages: " + (", ".join(f"{k} {v}" for k, v in status["statuses"].items() if v) or "none yet"))
    if status["next"]:
        lines += ["", "next to go out:"]
        lines += [f"  #{m['id']:<8} {m['priority']:<7} {m['template']}" for m in status["next"]]
    lines += render_meta(status["meta"])
    return "\n".join(lines)


def _pause_text(sender: dict[str, Any]) -> str:
    if sender["paused"] == "by_hand":
        # "paused by hand by cli:ana: why" reads as it is; capitals make it stand out in the line
        return f", PAUSED{sender['pause_reason'][len('paused'):]} (until `wanotify resume`)"
    if sender["paused"] == "quality":
        return f", PAUSED after a quality limit until {sender['paused_until']:%H:%M:%S} ({sender['pause_reason']})"
    return ""

