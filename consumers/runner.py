"""Running consumers as a process: logging, metrics endpoint, signals, clean stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from consumers.monitor import monitor_forever
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.metrics import Metrics

log = logging.getLogger(__name__)

ROLES = ("notifier", "sender")


async def run_roles(settings: Settings, roles: list[str], metrics: Metrics | None = None) -> None:
    """Run the given consumers until SIGINT or SIGTERM, then stop them cleanly."""
    metrics = metrics or Metrics()
    engine = make_engine(settings.database_url, pre_ping=False)
    sessions = session_factory(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_stop, stop, sig)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
        log.info("metrics on :%d/metrics", settings.metrics_port)
    metrics.gap_setting.set(settings.send_gap_seconds)
    tasks = [asyncio.create_task(_start(role, settings, metrics, sessions, stop), name=role) for role in roles]
    monitor = asyncio.create_task(monitor_forever(settings, metrics, sessions))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception():
                stop.set()
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        monitor.cancel()
        await asyncio.gather(*tasks, monitor, return_exceptions=True)
        engine.dispose()
        log.info("stopped")


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("%s received: finishing the work in hand, then stopping", sig.name)
    stop.set()


def _start(role: str, settings: Settings, metrics: Metrics, sessions, stop: asyncio.Event) -> Coroutine[Any, Any, None]:  # type: ignore[no-untyped-def]
    factories: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "notifier": lambda: _notifier(settings, metrics, sessions, stop),
        "sender": lambda: _sender(settings, metrics, sessions, stop),
    }
    return factories[role]()


async def _notifier(settings: Settings, metrics: Metrics, sessions, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    from consumers.notifier.service import Notifier

    await Notifier(settings, metrics, sessions).run(stop)


async def _sender(settings: Settings, metrics: Metrics, sessions, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    from consumers.providers import make_provider
    from consumers.sender.service import Sender

    provider = make_provider(settings.whatsapp)
    try:
        await Sender(settings, metrics, sessions, provider).run(stop)
    finally:
        provider.close()
