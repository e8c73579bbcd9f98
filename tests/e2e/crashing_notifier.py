"""``python -m tests.e2e.crashing_notifier MODE``: the notifier, killing itself (SIGKILL) at an
exact point, so a crash test does not depend on timing.

- ``before-ack``: right after a batch's rows are committed and its messages confirmed by the
  broker, before the ack: the events come back and must yield no second row or call;
- ``mid-write:N``: inside the N-th write of a batch of at least 50 events, after its rows are
  inserted and before the commit.

The product has no such hook: this wraps two of its functions before running it.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from wanotify.consumers.notifier import service


def die(where: str) -> None:
    print(f"crashing_notifier: SIGKILL {where}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def kill_before_ack() -> None:
    async def ack(batch: Any, multiple: bool) -> None:
        die(f"after committing and publishing {len(batch)} event(s), before the ack")

    service._ack = ack  # type: ignore[assignment]


def kill_mid_write(nth: int) -> None:
    real = service.write_batch
    writes = 0

    def write_batch(session: Any, plans: list[Any], *args: Any, **kwargs: Any) -> Any:
        nonlocal writes
        result = real(session, plans, *args, **kwargs)
        writes += len(plans) >= 50
        if writes == nth:
            die(f"in the middle of writing a batch of {len(plans)} events, before its commit")
        return result

    service.write_batch = write_batch  # type: ignore[assignment]


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "before-ack":
        kill_before_ack()
    else:
        kill_mid_write(int(mode.split(":")[1]))
    from wanotify.ops.cli import main

    main(["run", "notifier"])
