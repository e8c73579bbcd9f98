"""Per-sender gauges: state, daily usage and limit, queue depth by priority, consumer, held messages.

Every long-running process sets them from the same reading of the database and the broker
(``shared/sender_report.py``, refreshed by ``consumers/monitor.py``), so ``max by (sender)``
over them is the same whichever process answers. The ``sender`` label is a configured sender's
name (a few); the other labels come from fixed sets. A sender that is removed loses its series.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

if TYPE_CHECKING:
    from wanotify.shared.sender_report import SenderReport

STATES = ("active", "paused", "disabled")
# Why a sender is paused: Meta's quality or policy code, or an admin (``sender_report.pause_kind``).
PAUSE_KINDS = ("quality", "by_hand")

Labels = tuple[str, ...]


class SenderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.state = Gauge(
            "wanotify_sender_state", "1 for the sender's current state (active, paused or disabled), else 0.",
            ["sender", "state"], registry=registry)
        self.daily_used = Gauge(
            "wanotify_sender_daily_used", "Unique recipients counted against the sender's daily limit in the rolling window.",
            ["sender"], registry=registry)
        self.daily_limit = Gauge(
            "wanotify_sender_daily_limit", "The sender's daily unique-recipient limit in force (no series: no limit).",
            ["sender"], registry=registry)
        self.daily_full = Gauge(
            "wanotify_sender_daily_limit_reached", "1 while the sender's normal and low messages wait for its daily limit.",
            ["sender"], registry=registry)
        self.queue_ready = Gauge(
            "wanotify_sender_queue_ready", "Messages ready in the sender's send queue of one priority.",
            ["sender", "priority"], registry=registry)
        self.consumer_attached = Gauge(
            "wanotify_sender_consumer_attached", "1 while a sender process consumes the sender's send queues.",
            ["sender"], registry=registry)
        self.held = Gauge(
            "wanotify_sender_held_messages",
            "Messages the sending budget deferred and that are not due yet, by reason.", ["sender", "reason"],
            registry=registry)
        self._series: dict[str, set[Labels]] = {}

    def update(self, reports: Iterable[SenderReport]) -> None:
        """Set every gauge from these reports; series of senders or reasons no longer seen go."""
        values: dict[str, dict[Labels, float]] = {name: {} for name in self._gauges()}
        for r in reports:
            for state in STATES:
                values["state"][(r.name, state)] = 1.0 if r.state == state else 0.0
            values["daily_used"][(r.name,)] = r.daily.used
            if r.daily.limit is not None:
                values["daily_limit"][(r.name,)] = r.daily.limit
            values["daily_full"][(r.name,)] = 1.0 if r.daily.full else 0.0
            for priority, ready in r.ready.items():
                if ready is not None:
                    values["queue_ready"][(r.name, priority)] = ready
            if r.consumers is not None:
                values["consumer_attached"][(r.name,)] = 1.0 if r.consumer_attached else 0.0
            for held in r.held:
                values["held"][(r.name, held.reason)] = held.count
        for name, gauge in self._gauges().items():
            self._replace(name, gauge, values[name])

    def _gauges(self) -> dict[str, Gauge]:
        return {"state": self.state, "daily_used": self.daily_used, "daily_limit": self.daily_limit,
                "daily_full": self.daily_full, "queue_ready": self.queue_ready,
                "consumer_attached": self.consumer_attached, "held": self.held}

    def _replace(self, name: str, gauge: Gauge, current: dict[Labels, float]) -> None:
        for labels, value in current.items():
            gauge.labels(*labels).set(value)
        for labels in self._series.get(name, set()) - set(current):
            gauge.remove(*labels)
        self._series[name] = set(current)
