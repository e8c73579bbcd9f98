"""Pre-loading a send-queue backlog the way production makes one: events through a notifier."""

from __future__ import annotations

import asyncio
import time

from bench.env import Depths
from bench.publisher import publish_burst
from wanotify.consumers.notifier.service import Notifier
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory
from wanotify.shared.metrics import Metrics


def preload(s: Settings, count: int, *, start: int = 0, kind: str = "registered", timeout: float = 600.0) -> float:
    """Publish ``count`` events and let an in-process notifier queue their messages; returns seconds."""
    return asyncio.run(_preload(s, count, start, kind, timeout))


async def _preload(s: Settings, count: int, start: int, kind: str, timeout: float) -> float:
    engine = make_engine(s.database_url)
    stop = asyncio.Event()
    notifier = asyncio.create_task(Notifier(s, Metrics(), session_factory(engine)).run(stop))
    depths = Depths(s.namespace)
    try:
        await asyncio.sleep(0.3)  # let it declare the topology before events arrive
        before = await asyncio.to_thread(depths.send)
        began = time.monotonic()
        await publish_burst(s.amqp_url, s.namespace, count, start, kind)
        while await asyncio.to_thread(depths.send) < before + count:
            if time.monotonic() - began > timeout or notifier.done():
                raise RuntimeError(f"preload of {count} messages did not finish in {timeout}s")
            await asyncio.sleep(0.1)
        return time.monotonic() - began
    finally:
        stop.set()
        await asyncio.gather(notifier, return_exceptions=True)
        depths.close()
        engine.dispose()
