"""The live demo: the seed system's scenario against a local fake WhatsApp provider.

Five members register at the same moment. Each registration yields a welcome message
(normal priority) and a payment link (high priority). The sender starts once the ten messages
wait (on a busy machine the notifier could otherwise still be writing some of them when the
first calls go), so the payment links go first, then the welcomes, each call at least the gap
after the previous one. A welcome that comes later than the gap waited for its member's
recipient interval (``RECIPIENT_INTERVAL_SECONDS`` after their payment link), and its line says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from typing import Any

import pika
import pika.exceptions
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from wanotify.consumers.notifier.service import Notifier
from wanotify.consumers.sender.wiring import run_sender
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.producers.async_publisher import AsyncEventPublisher
from wanotify.shared import runtime
from wanotify.shared.config import Settings, WhatsAppSettings
from wanotify.shared.db.engine import create_database_if_missing, drop_database, make_engine, session_factory, transaction
from wanotify.shared.db.migrate import upgrade
from wanotify.shared.db.models import MessageLog
from wanotify.shared.db.seed import seed_defaults
from wanotify.shared.metrics import Metrics
from wanotify.shared.phone import mask_phone
from wanotify.shared.topology import Topology, delete_topology
from wanotify.shared.urls import amqp_urls

console = Console(highlight=False)


def scenario(members: int) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for i in range(1, members + 1):
        person = {"member_id": f"M-{1000 + i}", "name": f"Member {i}", "phone": f"08114040{700 + i}"}
        events.append(("member.registered", person))
        events.append(("payment.link_created",
                       person | {"amount": 150000, "payment_url": f"https://pay.example.com/i/{1000 + i}"}))
    return events


def demo_settings(settings: Settings, gap: float | None = None) -> Settings:
    """The demo's own namespace and database, so it never touches real queues or counts, and its
    gap (``gap``, or the configured one)."""
    url = make_url(settings.database_url)
    database = url.set(database=f"{url.database}_demo").render_as_string(hide_password=False)
    return settings.with_(namespace=f"{settings.namespace}-demo", database_url=database,
                          send_gap_seconds=settings.send_gap_seconds if gap is None else gap)


def run_demo(settings: Settings, members: int = 5) -> dict[str, Any]:
    """Run the scenario to the end and return a summary (calls, gaps, order).

    ``settings`` are the demo's own (``demo_settings``): its database is created for the run and
    dropped after it, its queues deleted, so nothing of it is left behind."""
    logging.getLogger().setLevel(logging.WARNING)  # the live lines below tell the story
    try:
        drop_database(settings.database_url)  # what an interrupted run may have left
        prepare_database(settings.database_url, settings.send_gap_seconds)
        printer = _Printer(settings.send_gap_seconds, settings.recipient_interval_seconds)
        with FakeProviderServer(on_call=printer) as provider:
            demo = settings.with_(whatsapp=WhatsAppSettings(
                provider="meta", base_url=provider.url, phone_number_id="demo", access_token="demo",
                # Its members never wrote to the number (no open 24-hour window): plain text is what the fake takes.
                send_mode="text"))
            asyncio.run(_run(demo, provider, scenario(members)))
            calls = provider.calls()
    finally:
        clean_up(settings)
    summary = _summary(calls, printer.held)
    held = (f"; {printer.held} {'call' if printer.held == 1 else 'calls'} waited for the member's "
            f"{settings.recipient_interval_seconds:g} s recipient interval" if printer.held else "")
    console.print(f"\n[bold]{summary['messages']} messages sent[/]; gaps between calls "
                  f"{summary['min_gap_seconds']}–{summary['max_gap_seconds']} s (configured {settings.send_gap_seconds} s){held}",
                  soft_wrap=True)
    return summary


def _summary(calls: list[dict[str, Any]], held: int) -> dict[str, Any]:
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(calls)]
    return {
        "messages": len(calls),
        "order": [_kind(c) for c in calls],
        "min_gap_seconds": round(min(gaps), 3) if gaps else None,
        "max_gap_seconds": round(max(gaps), 3) if gaps else None,
        "held_by_recipient_interval": held,
    }


def prepare_database(database_url: str, gap: float | None = None) -> None:
    """Create (if missing), migrate and seed a database; store ``gap`` as its gap setting, if
    given (a stored setting wins over the environment's)."""
    create_database_if_missing(database_url)
    upgrade(database_url)
    engine = make_engine(database_url, pool_size=1)
    with transaction(session_factory(engine)) as session:
        seed_defaults(session)
        if gap is not None:
            runtime.set_value(session, "message_delay_seconds", str(gap))
    engine.dispose()


def clean_up(settings: Settings) -> None:
    """Delete the demo's queues and exchange, and drop its database."""
    topology = Topology.of(settings)
    retries = [topology.retry_queue(settings.retry_delay_seconds * settings.retry_backoff ** n)
               for n in range(settings.max_retries)]
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection = pika.BlockingConnection([pika.URLParameters(url) for url in amqp_urls(settings.amqp_url)])
        try:
            delete_topology(connection.channel(), topology, retries)
        finally:
            connection.close()
    drop_database(settings.database_url)


async def _run(settings: Settings, provider: FakeProviderServer, events: list[tuple[str, dict[str, Any]]]) -> None:
    engine = make_engine(settings.database_url, pre_ping=False)
    sessions = session_factory(engine)
    stop = asyncio.Event()
    metrics = Metrics()
    consumers = [asyncio.create_task(Notifier(settings, metrics, sessions).run(stop))]
    try:
        async with AsyncEventPublisher(settings.amqp_url, settings.namespace, source="demo") as publisher:
            console.print(f"[bold]Publishing {len(events)} events at once[/] "
                          f"(gap {settings.send_gap_seconds} s; namespace {settings.namespace})\n")
            await asyncio.gather(*(publisher.publish(kind, data) for kind, data in events))
        await _until_logged(sessions, len(events))
        consumers.append(asyncio.create_task(run_sender(settings, metrics, sessions, stop)))
        await asyncio.to_thread(provider.wait_for_calls, len(events), len(events) * (settings.send_gap_seconds + 5))
    finally:
        stop.set()
        await asyncio.gather(*consumers, return_exceptions=True)
        engine.dispose()


async def _until_logged(sessions, count: int, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until the notifier has written ``count`` messages (the sender then starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            if (session.scalar(select(func.count()).select_from(MessageLog)) or 0) >= count:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the notifier did not write {count} messages within {timeout:.0f} s")


def _kind(call: dict[str, Any]) -> str:
    return "payment_link" if "pembayaran" in call["body"] else "welcome"


class _Printer:
    """Prints each call as the provider receives it, with the time since the previous one, and
    says when a call came late because its member's recipient interval held it."""

    def __init__(self, gap: float, interval: float) -> None:
        self._gap = gap
        self._interval = interval
        self._previous: float | None = None
        self._count = 0
        self._last_to: dict[str, tuple[int, float]] = {}  # recipient -> (number, time) of their last call
        self.held = 0  # calls the recipient interval held past the gap
        self._lock = threading.Lock()

    def __call__(self, call: dict[str, Any]) -> None:
        with self._lock:
            self._count += 1
            since = "   first" if self._previous is None else f"+{call['t'] - self._previous:7.3f}s"
            note = self._held_note(call)
            self._previous = call["t"]
            self._last_to[call["to"]] = (self._count, call["t"])
            colour = "red" if _kind(call) == "payment_link" else "cyan"
            stamp = time.strftime("%H:%M:%S", time.localtime(call["t"]))
            console.print(f"{stamp} {since}  #{self._count:<2} [{colour}]{_kind(call):<12}[/] "
                          f"{mask_phone(call['to'] or ''):<14} {call['body'][:48]}…{note}", soft_wrap=True)

    def _held_note(self, call: dict[str, Any]) -> str:
        """A call noticeably later than the gap, whose member's interval since their previous call
        ended after the gap did, was held by that interval: without a word, its longer gap looks
        like a stall."""
        before = self._last_to.get(call["to"])
        if self._previous is None or before is None:
            return ""
        number, at = before
        slack = max(0.05, 0.1 * self._gap)  # the stamps' jitter, well under any delay worth a note
        late = call["t"] - self._previous > self._gap + slack
        if not late or at + self._interval <= self._previous + self._gap:
            return ""
        self.held += 1
        return f"  [dim](waited for the {self._interval:g} s recipient interval since #{number})[/]"
