"""The bench's surroundings: settings, a fresh database, namespaces, queue depths, clean-up."""

from __future__ import annotations

import contextlib
import os
import uuid

import pika
from pika.exceptions import AMQPError
from sqlalchemy import create_engine, make_url, text

from bench.config import AMQP_URL, DATABASE_URL
from wanotify.shared.config import Settings, WhatsAppSettings
from wanotify.shared.db.engine import drop_database
from wanotify.shared.monitoring import QueueProbe
from wanotify.shared.topology import Topology, declare_topology, delete_topology

RUN_ID = uuid.uuid4().hex[:6]


def namespace(scenario: str, part: str = "") -> str:
    """A namespace used by one scenario (part) of this run only."""
    return f"bench-{RUN_ID}-{scenario}{'-' + part if part else ''}"


def settings(ns: str, gap: float = 10.0, provider_url: str | None = None) -> Settings:
    whatsapp = WhatsAppSettings(provider="fake")  # chosen explicitly: there is no default provider
    if provider_url:
        whatsapp = WhatsAppSettings(provider="meta", base_url=provider_url, phone_number_id="bench",
                                    access_token="bench", timeout_seconds=5.0, send_mode="text")
    return Settings.from_env({}).with_(amqp_url=AMQP_URL, database_url=DATABASE_URL, namespace=ns,
                                       send_gap_seconds=gap, whatsapp=whatsapp)


def process_env(s: Settings, **extra: str) -> dict[str, str]:
    """Environment for ``python -m wanotify.ops.cli run ...`` with these settings (no inherited WANOTIFY_*)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WANOTIFY_", "WHATSAPP_", "SEND_GAP", "DATABASE_URL", "AMQP_URL", "METRICS_PORT"))}
    env.update({
        "AMQP_URL": s.amqp_url,
        "DATABASE_URL": s.database_url,
        "WANOTIFY_NAMESPACE": s.namespace,
        "SEND_GAP_SECONDS": repr(s.send_gap_seconds),
        "WHATSAPP_PROVIDER": s.whatsapp.provider,
        "PYTHONUNBUFFERED": "1",
    })
    if s.whatsapp.base_url:
        env.update({
            "WHATSAPP_API_BASE_URL": s.whatsapp.base_url,
            "WHATSAPP_PHONE_NUMBER_ID": s.whatsapp.phone_number_id or "bench",
            "WHATSAPP_ACCESS_TOKEN": s.whatsapp.access_token or "bench",
            "WHATSAPP_TIMEOUT_SECONDS": str(s.whatsapp.timeout_seconds),
            "WHATSAPP_SEND_MODE": s.whatsapp.send_mode,  # text: the bench's recipients never wrote
        })
    env.update(extra)
    return env


def fresh_database() -> None:
    """Drop and recreate ``wanotify_bench``: schema, templates and rules, nothing else."""
    from wanotify.ops.demo import prepare_database

    drop_database(DATABASE_URL)
    prepare_database(DATABASE_URL)


def sessions_opened() -> int | None:
    """PostgreSQL sessions opened to ``wanotify_bench`` since it was made (each one a new backend
    process), as the server's statistics have them so far."""
    url = make_url(DATABASE_URL)
    engine = create_engine(url.set(database="postgres"), hide_parameters=True)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            return connection.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = :name"),
                                      {"name": url.database}).scalar()
    finally:
        engine.dispose()


class Depths:
    """Ready-message counts of a namespace's queues (passive declarations on one connection)."""

    def __init__(self, ns: str) -> None:
        self.topology = Topology(ns)
        self._probe = QueueProbe(AMQP_URL)

    def send(self) -> int:
        """Ready messages on the default sender's three send queues (high, normal, low)."""
        return self._ready(*self.topology.send_queues())

    def notifier(self) -> int:
        return self._ready(self.topology.notifier_queue)

    def _ready(self, *queues: str) -> int:
        return sum(stats.ready or 0 for stats in self._probe.stats(list(queues)))

    def close(self) -> None:
        self._probe.close()


def declare_namespace(ns: str, senders: tuple[str, ...] = ()) -> None:
    """Declare a namespace's exchanges and queues, the named senders' too (before publishing to them)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        declare_topology(connection.channel(), Topology(ns), senders)
    finally:
        connection.close()


def delete_namespace(ns: str, extra_queues: tuple[str, ...] = (), senders: tuple[str, ...] = ()) -> None:
    """Delete every queue and the exchange of a namespace (best effort)."""
    topology = Topology(ns)
    # A retry queue exists only if a call failed; the default delay's name is deleted too.
    with contextlib.suppress(AMQPError, OSError):
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            delete_topology(connection.channel(), topology, [topology.retry_queue(300.0), *extra_queues], senders)
        finally:
            with contextlib.suppress(AMQPError):
                connection.close()


