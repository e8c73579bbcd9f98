"""Prometheus metrics (contract section 6), built against an injected registry.

Labels come from small fixed sets (priority, reason, outcome, queue, and ``sender``: the few
configured senders' names): never a phone number, a person's name or an event id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from wanotify.shared.sender_metrics import PAUSE_KINDS, SenderMetrics

GAP_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 9.5, 10, 10.05, 10.1, 10.5, 11, 15, 30, 60, 300, 3600)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Every metric a wanotify process may export; each process uses the ones it needs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_received = Counter(
            "wanotify_events_received_total", "Events taken from the notifier queue.", ["event_type"], registry=r)
        self.events_parked = Counter(
            "wanotify_events_parked_total", "Events parked in the events dead-letter queue.",
            ["event_type", "reason"], registry=r)
        self.messages_queued = Counter(
            "wanotify_messages_queued_total", "Messages rendered, logged and put on the send queue.",
            ["priority"], registry=r)
        self.duplicate_events = Counter(
            "wanotify_duplicate_events_total", "Events whose messages already existed (same event_id).", registry=r)
        self.messages_sent = Counter(
            "wanotify_messages_sent_total", "Messages the provider accepted.", ["priority", "sender"], registry=r)
        self.messages_failed = Counter(
            "wanotify_messages_failed_total", "Failed provider calls.", ["kind"], registry=r)
        self.messages_dead = Counter(
            "wanotify_messages_dead_total", "Messages parked in the send dead-letter queue.", ["reason"], registry=r)
        self.retries = Counter(
            "wanotify_retries_total", "Retries scheduled through the retry queues.", registry=r)
        self.stale_copies = Counter(
            "wanotify_stale_copies_total", "Send-queue copies dropped because their attempt was already made.",
            registry=r)
        self.ambiguous_calls = Counter(
            "wanotify_ambiguous_calls_total",
            "Calls found in flight after their sender process died, whose outcome is unknown (parked dead).", registry=r)
        self.provider_call_duration = Histogram(
            "wanotify_provider_call_duration_seconds", "Duration of WhatsApp API calls.", ["outcome"],
            buckets=CALL_BUCKETS, registry=r)
        self.send_gap = Histogram(
            "wanotify_send_gap_seconds", "Time between the starts of two consecutive calls of this sender.",
            ["sender"], buckets=GAP_BUCKETS, registry=r)
        self.sender_paused = Gauge(
            "wanotify_sender_paused",
            "1 while the sender is paused, for the pause's kind: quality (a provider quality or policy limit) or by_hand.",
            ["sender", "kind"], registry=r)
        self.sender_pauses = Counter(
            "wanotify_sender_pauses_total", "Pauses caused by provider quality or policy limits, by Meta's error code.",
            ["code", "sender"], registry=r)
        self.last_call = Gauge(
            "wanotify_sender_last_call_timestamp_seconds", "Unix time of the start of the sender's last call.",
            ["sender"], registry=r)
        self.queue_depth = Gauge(
            "wanotify_queue_depth", "Messages ready in a queue.", ["queue"], registry=r)
        self.queue_consumers = Gauge(
            "wanotify_queue_consumers", "Consumers attached to a queue.", ["queue"], registry=r)
        self.waiting_messages = Gauge(
            "wanotify_waiting_messages", "Logged messages waiting to be sent, by priority.", ["priority"], registry=r)
        self.backlog_drain = Gauge(
            "wanotify_send_backlog_drain_seconds",
            "Estimated time to send the backlog: the slowest sender's share (gap, daily limit, pause, recipient interval).",
            registry=r)
        self.gap_setting = Gauge(
            "wanotify_send_gap_setting_seconds", "The configured minimum gap between calls.", registry=r)
        self.status_outbox_backlog = Gauge(
            "wanotify_status_outbox_backlog", "Status events committed but not yet published.", registry=r)
        self.status_relay_lag = Gauge(
            "wanotify_status_relay_lag_seconds", "Age of the oldest status event not yet published (0: none).",
            registry=r)
        self.status_events_published = Counter(
            "wanotify_status_events_published_total", "Status events published to the status exchange.", ["status"],
            registry=r)
        self.status_relay_active = Gauge(
            "wanotify_status_relay_active", "1 while this process holds the status relay lock.", registry=r)
        self.meta = MetaStateMetrics(r)
        self.senders = SenderMetrics(r)  # per sender: state, daily usage, queues, consumer, held

    def show_pause(self, sender: str, kind: str | None) -> None:
        """The sender's pause as this process sees it: 1 for its kind, 0 for the other (None: not paused)."""
        for each in PAUSE_KINDS:
            self.sender_paused.labels(sender, each).set(1 if each == kind else 0)

    def forget_pause(self, sender: str) -> None:
        """This process no longer sends for the sender: it exports nothing about its pause."""
        for each in PAUSE_KINDS:
            self.sender_paused.remove(sender, each)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` from a daemon thread."""
        start_http_server(port, addr=addr, registry=self.registry)


# Meta's words used as label values: upper-case words, or OTHER, so a surprise cannot explode the set.
_WORD = re.compile(r"[A-Z_]{1,24}")


def _label(value: str | None, unknown: str = "UNKNOWN") -> str:
    word = (value or unknown).upper()
    return word if _WORD.fullmatch(word) else "OTHER"


class MetaStateMetrics:
    """What Meta last said about the mapped templates and the sending numbers, as gauges.

    Set from the database (``wanotify.shared.meta_state``) by whichever process serves them, so every
    process says the same. Template names are the admin's mapped ones (few); numbers are
    counted by quality, never named.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.template_status = Gauge(
            "wanotify_meta_template_status",
            "1 for each mapped Meta template at its current status (UNKNOWN: Meta has not reported it yet).",
            ["template", "language", "status"], registry=registry)
        self.templates_not_approved = Gauge(
            "wanotify_meta_templates_not_approved", "Mapped Meta templates whose status is not APPROVED.",
            registry=registry)
        self.phone_numbers = Gauge(
            "wanotify_meta_phone_numbers", "Sending numbers by the quality Meta last reported.", ["quality"],
            registry=registry)
        self.limit_lowered = Gauge(
            "wanotify_meta_messaging_limit_lowered",
            "Sending numbers whose messaging limit Meta lowered (until it is raised again).", registry=registry)
        self._templates: set[tuple[str, str, str]] = set()
        self._qualities: set[str] = set()

    def update(self, templates: Iterable[dict[str, Any]], numbers: Iterable[dict[str, Any]]) -> None:
        """Replace the gauges' values with these states; series no longer true are removed."""
        current = {(t["meta_name"], t["language"], _label(t["status"])) for t in templates}
        for labels in current:
            self.template_status.labels(*labels).set(1)
        for labels in self._templates - current:
            self.template_status.remove(*labels)
        self._templates = current
        self.templates_not_approved.set(sum(1 for labels in current if labels[2] != "APPROVED"))
        self._update_numbers(list(numbers))

    def _update_numbers(self, numbers: list[dict[str, Any]]) -> None:
        by_quality: dict[str, int] = {}
        for number in numbers:
            quality = _label(number["quality"])
            by_quality[quality] = by_quality.get(quality, 0) + 1
        for quality in self._qualities | set(by_quality):
            self.phone_numbers.labels(quality).set(by_quality.get(quality, 0))
        self._qualities |= set(by_quality)
        self.limit_lowered.set(sum(1 for number in numbers if number["limit_lowered"]))
