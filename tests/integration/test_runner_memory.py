"""A consumer process keeps what it made at start-up out of the garbage collector's full passes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from wanotify.consumers import runner


async def _idle(*_args: Any, **_kwargs: Any) -> None:
    return None


def test_a_process_that_is_ready_has_frozen_its_start_up_objects(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a process whose consumer and background tasks end at once (the start-up is real:
    # the database is waited for and the metrics set)
    for name in ("_supervise", "monitor_forever", "relay_status_forever"):
        monkeypatch.setattr(runner, name, _idle)
    gc.unfreeze()
    try:
        # When it runs to its end
        asyncio.run(runner.run_roles(settings.with_(metrics_port=0), ["notifier"]))
        # Then what start-up made is out of the full passes: ~100,000 objects, 100 ms a pass here
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
