"""Which sender processes are alive, so a redelivered copy is resent only when its claimant died.

Each sender process has a row in ``sender_processes`` and refreshes ``seen_at`` every
``HEARTBEAT_SECONDS``. A claimant is dead when it said it stopped, when its heartbeat is older
than ``DEAD_AFTER``, or at once when it ran on this host and its process id is gone (a SIGKILL
on the same machine needs no timeout to be noticed).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.shared.db.models import SenderProcess

HEARTBEAT_SECONDS = 1.0
# Several missed heartbeats: longer than a garbage-collection pause or a slow transaction, short
# enough that a crashed sender's last message waits only seconds for its resend.
DEAD_AFTER = timedelta(seconds=5)


def register(session: Session, sender_id: str) -> None:
    """Announce this process as alive."""
    session.execute(insert(SenderProcess).values(sender_id=sender_id, host=socket.gethostname(), pid=os.getpid())
                    .on_conflict_do_update(index_elements=[SenderProcess.sender_id],
                                           set_={"seen_at": func.now(), "stopped_at": None}))


def beat(session: Session, sender_id: str) -> None:
    session.execute(update(SenderProcess).where(SenderProcess.sender_id == sender_id).values(seen_at=func.now()))


def stopped(session: Session, sender_id: str) -> None:
    """Say this process has stopped: nothing it claimed is still in progress."""
    session.execute(update(SenderProcess).where(SenderProcess.sender_id == sender_id).values(stopped_at=func.now()))


def is_alive(session: Session, sender_id: str, now: datetime) -> bool:
    process = session.get(SenderProcess, sender_id)
    if process is None or process.stopped_at is not None:
        return False
    if process.host == socket.gethostname() and not _pid_exists(process.pid):
        return False
    return now - process.seen_at < DEAD_AFTER


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True
