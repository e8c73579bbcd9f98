"""A sender process draining a pre-loaded backlog into a fake provider process.

Shared by ``pacing`` and ``sender_rate``: the backlog is queued first (events through an
in-process notifier), then the sender starts, and the provider's arrival times are the data.
"""

from __future__ import annotations

import time
from typing import Any

from bench import procs
from bench.env import Depths, delete_namespace, namespace, process_env, settings
from bench.fake import FakeProvider
from bench.load import preload
from bench.profile import Profiler
from bench.scenarios import Context


def drain(ctx: Context, fake: FakeProvider, label: str, n: int, gap: float,
          profile_seconds: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any] | None, float]:
    """Queue ``n`` messages, start a sender at ``gap``, return (calls, profile, sender peak RSS MB)."""
    ns = namespace(label)
    s = settings(ns, gap, fake.url)
    fake.reset()
    profile = None
    try:
        preload(s, n)
        sender = procs.wanotify("sender", process_env(s), ctx.log_dir, name=f"{label}-sender")
        try:
            profiler = Profiler(sender.pid, profile_seconds, ctx.out_dir, f"{label}-sender", wall=True).start() \
                if profile_seconds else None
            calls = _wait_for_calls(fake, ns, n, timeout=(n - 1) * gap + 60 + n / 50)
            sender.rss()
            if profiler:
                profile = profiler.finish()
        finally:
            sender.stop()
    finally:
        delete_namespace(ns)
    return calls, profile, round(sender.peak_rss / 2**20, 1)


def _wait_for_calls(fake: FakeProvider, ns: str, n: int, timeout: float) -> list[dict[str, Any]]:
    """Watch the queue drain (a cheap passive declare), then fetch the calls: fetching every call
    record again and again would load the fake and this process while the sender is measured."""
    deadline = time.monotonic() + timeout
    depths = Depths(ns)
    try:
        while depths.send() > 0 and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        depths.close()
    return fake.wait_for(n, timeout=max(1.0, deadline - time.monotonic()), poll=0.5)
