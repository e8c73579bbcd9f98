"""The web server's Prometheus metrics, built against an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from wanotify.shared.metrics import MetaStateMetrics


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Status codes the app answers with (a fixed set); uvicorn's own 400s and 503s are not seen here.
        self.requests = Counter(
            "wanotify_webhook_requests_total", "Webhook POSTs answered by the app, by status code.", ["status"],
            registry=registry)
        self.receipts = Counter(
            "wanotify_webhook_receipts_total",
            "Receipts received, by what they did (moved, parked, stale, late_failure, unknown, duplicate).",
            ["outcome"], registry=registry)
        self.events = Counter(
            "wanotify_webhook_events_total",
            "Other changes received (inbound, opted_out, template, account, stale_update, duplicate_event).",
            ["outcome"], registry=registry)
        # Meta's template and number state, read from the database (shared.meta_state).
        self.meta = MetaStateMetrics(registry)
