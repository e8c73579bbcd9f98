"""Running consumers as a process: logging, metrics endpoint, signals, clean stop.

Each consumer is supervised: while RabbitMQ or PostgreSQL is unreachable (at start-up, or a
connection closed while starting), it waits and starts again with backoff, logging each
attempt. The process exits only on a signal or on a problem only a person can fix (a
configuration error, printed with its fix).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine

from wanotify.consumers.monitor import monitor_forever
from wanotify.consumers.status import relay_status_forever
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import DATABASE_THREADS, make_engine, session_factory
from wanotify.shared.db.retry import Stopped
from wanotify.shared.metrics import Metrics
from wanotify.shared.senders import active_senders
from wanotify.shared.startup import broker_config_error, check_database, database_config_error, until_available, where_database
from wanotify.shared.template_sync import sync_forever, sync_wanted
from wanotify.shared.urls import amqp_hosts

log = logging.getLogger(__name__)

ROLES = ("notifier", "sender")

# Beside one connection per database thread (``DATABASE_THREADS``), the status relay keeps one
# for its lock.
HELD_CONNECTIONS = 1


def settle_memory() -> None:
    """Keep what start-up made (modules, classes, the engine: about 100,000 objects) out of the
    cyclic garbage collector's full passes. Each full pass looked at all of them, about 100 ms
    here, and held up the message in hand: a message's way through an idle notifier took 100-
    135 ms instead of about 25 whenever one came. They live as long as the process anyway."""
    gc.collect()
    gc.freeze()


def database_threads(database_url: str) -> tuple[ThreadPoolExecutor, Engine]:
    """The threads a consumer process runs its database work in, and an engine whose pool (and
    its autocommit twin's) keeps a connection for each of them."""
    executor = ThreadPoolExecutor(DATABASE_THREADS, thread_name_prefix="wanotify-db")
    return executor, make_engine(database_url, pool_size=DATABASE_THREADS + HELD_CONNECTIONS, pre_ping=False)


async def run_roles(settings: Settings, roles: list[str], metrics: Metrics | None = None) -> None:
    """Run the given consumers until SIGINT or SIGTERM, then stop them cleanly."""
    metrics = metrics or Metrics()
    executor, engine = database_threads(settings.database_url)
    sessions = session_factory(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(executor)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_stop, stop, sig)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
        log.info("metrics on :%d/metrics", settings.metrics_port)
    metrics.gap_setting.set(settings.send_gap_seconds)
    try:
        await _wait_for_database(settings, stop)
        if "sender" in roles:
            await asyncio.to_thread(_require_providers, settings, sessions)
        log.info("PostgreSQL at %s: ready", where_database(settings.database_url))
        settle_memory()
    except Stopped:
        engine.dispose()
        return
    except BaseException:
        engine.dispose()
        raise
    tasks = [asyncio.create_task(_supervise(role, settings, metrics, sessions, stop), name=role) for role in roles]
    background = [asyncio.create_task(monitor_forever(settings, metrics, sessions)),
                  # status events out: one process per database publishes, the others stand by
                  asyncio.create_task(relay_status_forever(settings, metrics, engine, stop))]
    if "sender" in roles and sync_wanted(settings):  # the mappings checked against Meta's templates on a timer
        background.append(asyncio.create_task(sync_forever(settings, sessions)))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception():
                stop.set()
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for task in background:
            task.cancel()
        await asyncio.gather(*tasks, *background, return_exceptions=True)
        engine.dispose()
        log.info("stopped")


def _require_providers(settings: Settings, sessions) -> None:  # type: ignore[no-untyped-def]
    """Refuse to send with no provider chosen (contract section 4): sender rows name their own
    provider; the environment's `default` number needs WHATSAPP_PROVIDER."""
    with sessions() as session:
        if any(config.from_environment for config in active_senders(session, settings)):
            settings.require_provider()


async def _wait_for_database(settings: Settings, stop: asyncio.Event) -> None:
    where = where_database(settings.database_url)
    await until_available(lambda: asyncio.to_thread(check_database, settings.database_url), f"PostgreSQL at {where}",
                          stop, lambda exc: database_config_error(exc, where))


async def _supervise(role: str, settings: Settings, metrics: Metrics, sessions, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    """Run one consumer; start it again whenever the broker cuts it off before it is up."""
    where = _broker_host(settings.amqp_url)
    try:
        await until_available(lambda: _start(role, settings, metrics, sessions, stop), f"{role}: RabbitMQ at {where}",
                              stop, lambda exc: broker_config_error(exc, where))
    except Stopped:
        return


def _broker_host(amqp_url: str) -> str:
    """Where the broker is, for log lines: ``host:port`` of each node AMQP_URL lists."""
    return amqp_hosts(amqp_url)


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
    from wanotify.consumers.notifier.service import Notifier

    await Notifier(settings, metrics, sessions).run(stop)


async def _sender(settings: Settings, metrics: Metrics, sessions, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    from wanotify.consumers.sender.wiring import run_sender

    await run_sender(settings, metrics, sessions, stop)
