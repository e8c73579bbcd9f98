"""Prometheus metrics (contract section 6), built against an injected registry.

Labels come from small fixed sets (priority, reason, outcome, queue): never a phone number,
a name or an event id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
            "wanotify_messages_sent_total", "Messages the provider accepted.", ["priority"], registry=r)
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
            "Calls found in flight after a crash, whose outcome is unknown (resent by policy).", registry=r)
        self.provider_call_duration = Histogram(
            "wanotify_provider_call_duration_seconds", "Duration of WhatsApp API calls.", ["outcome"],
            buckets=CALL_BUCKETS, registry=r)
        self.send_gap = Histogram(
            "wanotify_send_gap_seconds", "Time between the starts of two consecutive calls of this sender.",
            buckets=GAP_BUCKETS, registry=r)
        self.sender_paused = Gauge(
            "wanotify_sender_paused", "1 while the sender is paused by a provider quality limit.", registry=r)
        self.sender_pauses = Counter(
            "wanotify_sender_pauses_total", "Pauses caused by provider quality or policy limits.", ["code"],
            registry=r)
        self.last_call = Gauge(
            "wanotify_sender_last_call_timestamp_seconds", "Unix time of the start of the last call.", registry=r)
        self.queue_depth = Gauge(
            "wanotify_queue_depth", "Messages ready in a queue.", ["queue"], registry=r)
        self.queue_consumers = Gauge(
            "wanotify_queue_consumers", "Consumers attached to a queue.", ["queue"], registry=r)
        self.waiting_messages = Gauge(
            "wanotify_waiting_messages", "Logged messages waiting to be sent, by priority.", ["priority"], registry=r)
        self.backlog_drain = Gauge(
            "wanotify_send_backlog_drain_seconds", "Estimated time to send the backlog (depth x gap).", registry=r)
        self.gap_setting = Gauge(
            "wanotify_send_gap_setting_seconds", "The configured minimum gap between calls.", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` from a daemon thread."""
        start_http_server(port, addr=addr, registry=self.registry)
