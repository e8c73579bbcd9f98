"""The senders' lines of ``wanotify status`` (the figures come from ``shared/sender_report.py``)."""

from __future__ import annotations

from typing import Any


def render_senders(senders: list[dict[str, Any]]) -> list[str]:
    """The senders' lines of the text output: one per sender, then its held messages."""
    if not senders:
        return []
    lines = ["", f"{'SENDER':<16} {'STATE':<9} {'GAP':>8}  {'H/N/L':<11} {'TODAY':<26} LEASE"]
    for s in senders:
        lines.append(f"{s['name']:<16} {s['state']:<9} {_gap(s):>8}  {_queued(s['queues']):<11} "
                     f"{_daily(s['daily']):<26} {_lease(s)}")
        if s["state"] == "paused":
            until = "until resumed" if s["until_resumed"] else f"until {s['paused_until']:%Y-%m-%d %H:%M:%S %Z}"
            lines.append(f"  paused {until}: {s['pause_reason']}")
        lines += [f"  held for {h['reason']}: {h['count']}, next due {h['next_due']:%H:%M:%S}" for h in s["held"]]
    return lines


def _gap(s: dict[str, Any]) -> str:
    if s["gap_max_seconds"] is not None and s["gap_max_seconds"] > s["gap_seconds"]:
        return f"{s['gap_seconds']:g}-{s['gap_max_seconds']:g} s"
    return f"{s['gap_seconds']:g} s"


def _queued(queues: dict[str, int | None]) -> str:
    return "/".join("-" if n is None else str(n) for n in queues.values())


def _daily(daily: dict[str, Any]) -> str:
    if daily["limit"] is None:
        return f"{daily['used']} (no limit)"
    text = f"{daily['used']} of {daily['limit']}"
    if daily["full"]:
        text += f", FULL, room in {duration(daily['eta_seconds'])}"
    return text


def _lease(s: dict[str, Any]) -> str:
    holder = s["lease_process"] or s["lease_holder"] or "no process"
    if s["consumer_attached"]:
        return f"{holder}, consumer attached"
    # A number paused for long stops consuming (its heads wait on the broker) until near its end.
    return f"{holder}, {'not consuming while paused' if s['state'] == 'paused' else 'NO CONSUMER'}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "never (a sender holding messages may not send: paused until resumed, or disabled)"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
