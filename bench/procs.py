"""Child processes of a scenario: wanotify consumers, the fake provider, publishers, Celery.

Each child gets its own session (process group), writes to a log file in the results folder,
and is stopped by its own id: SIGTERM first, SIGKILL if it does not stop in time; a SIGTERM
to the bench itself stops them the same way (``unwind_on_sigterm``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.config import PROJECT_ROOT


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen([sys.executable, *args], env=env, cwd=PROJECT_ROOT, stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.popen.pid
        self.peak_rss = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """Wait until the log contains ``text``; returns the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{log[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not log {text!r} within {timeout}s:\n{self.log()[-3000:]}")

    def rss(self) -> int:
        """Resident memory of the process and its children, in bytes; keeps the peak."""
        try:
            parent = psutil.Process(self.pid)
            total = parent.memory_info().rss + sum(c.memory_info().rss for c in parent.children(recursive=True))
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, total)
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the process and its children have used so far."""
        try:
            parent = psutil.Process(self.pid)
            times = [parent.cpu_times(), *(c.cpu_times() for c in parent.children(recursive=True))]
        except psutil.Error:
            return 0.0
        return sum(t.user + t.system for t in times)

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the child's group, SIGKILL after ``timeout``; leftover children by pid."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            children = []
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(10)
        for child in children:
            try:
                child.wait(5)
            except psutil.TimeoutExpired:
                child.kill()
            except psutil.Error:
                pass
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)  # the group was created for this child (start_new_session)
        except ProcessLookupError:
            pass


def unwind_on_sigterm() -> None:
    """A SIGTERM (``kill``, a job's timeout) unwinds this process as Ctrl-C does, so every
    scenario's ``finally`` stops the children it started. Python's default ends the process at
    once, and its children, each in a session of its own, would run on: notifiers and senders
    against the bench database, taking CPU and the status relay from every later run."""
    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def wanotify(role: str, env: dict[str, str], log_dir: Path, name: str | None = None,
             round_trips: Path | None = None, extra: tuple[str, ...] = ()) -> Proc:
    """``python -m wanotify.ops.cli run ROLE [EXTRA…]``, returned once it consumes; with ``round_trips``,
    its PostgreSQL round trips are counted into that file (``bench.counted``)."""
    entry = ["-m", "bench.counted", "--out", str(round_trips)] if round_trips else ["-m", "wanotify.ops.cli"]
    proc = Proc(name or role, [*entry, "run", role, *extra], env, log_dir)
    proc.wait_for_log("consuming")
    return proc
