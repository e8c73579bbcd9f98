"""``run notifier --processes N``: N notifier processes under one command, where there are cores.

One notifier process is bound by one core (envelope checks, templates, its broker client). The
notifier queue hands events to every consumer on it, so N processes take a burst N ways; events
may then be logged slightly out of arrival order (each process keeps its own batches).

The command starts N children (``wanotify run notifier``, each in its own session so a
terminal's Ctrl-C reaches them only through this parent), forwards SIGTERM and SIGINT to
them, and returns when all have stopped. If one stops on its own, the others are stopped too
and the command exits with that child's code, so a supervisor restarts the whole set. Child k
serves its metrics on ``METRICS_PORT + k`` when METRICS_PORT is set.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger(__name__)


class Copies:
    def __init__(self, role: str, count: int, env: dict[str, str] | None = None) -> None:
        self.role = role
        self.count = count
        self.env = dict(os.environ if env is None else env)
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def run(self) -> int:
        """Start the children, wait for all of them; returns the exit code for the command."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._forward)
        self.children = [self._start(k) for k in range(self.count)]
        log.info("%s: %d processes (pids %s)", self.role, self.count, ", ".join(str(c.pid) for c in self.children))
        first_exit: int | None = None
        while any(c.poll() is None for c in self.children):
            ended = [c for c in self.children if c.returncode is not None]
            if ended and not self.stopping:
                first_exit = ended[0].returncode
                log.error("%s process %d stopped on its own (exit code %s): stopping the others",
                          self.role, ended[0].pid, first_exit)
                self._signal_all(signal.SIGTERM)
            time.sleep(0.2)
        if first_exit is not None:
            return first_exit if first_exit > 0 else 1  # killed by a signal: still a failure
        return max((c.returncode or 0) for c in self.children)

    def _start(self, k: int) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        port = env.get("METRICS_PORT", "")
        if port.isdigit() and int(port) > 0:
            env["METRICS_PORT"] = str(int(port) + k)
        return subprocess.Popen([sys.executable, "-m", "wanotify.ops.cli", "run", self.role], env=env,
                                start_new_session=True)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self._signal_all(signal.Signals(signum))

    def _signal_all(self, sig: signal.Signals) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(sig)
