"""Starting ``wanotify`` commands as a user would: separate processes, configured by env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class Proc:
    """A ``python -m wanotify.ops.cli ARGS`` process whose stderr goes to a file we can read."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str | None = None, name: str = "proc") -> None:
        self.args = args
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"wanotify-{name}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "wanotify.ops.cli", *args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        if ready:
            try:
                self.wait_for_log(ready)
            except BaseException:
                self.close()  # its log is in the error already; a process that never got ready must not outlive the test
                raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not log {text!r} within {timeout}s:\n{self.log()}")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def close(self) -> None:
        self.kill()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


def run_wanotify(args: tuple[str, ...], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """One ``wanotify`` command run to its end as a user runs it, its output captured; its
    standard input is ``stdin``, or nothing at all (never the test's terminal)."""
    source: dict[str, Any] = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
    return subprocess.run([sys.executable, "-m", "wanotify.ops.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, **source)


def wanotify_env(settings: Any, provider_url: str, **extra: Any) -> dict[str, str]:
    """The environment a test's processes run with."""
    # Nothing inherited decides the provider or the log level: tests read what processes print.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANOTIFY_", "WHATSAPP_", "SEND_GAP", "LOG_"))}
    env.update({
        "AMQP_URL": settings.amqp_url,
        "DATABASE_URL": settings.database_url,
        "WANOTIFY_NAMESPACE": settings.namespace,
        "WHATSAPP_PROVIDER": "meta",
        "WHATSAPP_API_BASE_URL": provider_url,
        "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
        "WHATSAPP_ACCESS_TOKEN": "test-token",
        "WHATSAPP_TIMEOUT_SECONDS": "2",
        # The fake records no user's messages: text first (the fake accepts it) unless a test
        # of the window and templates asks for WHATSAPP_SEND_MODE=window.
        "WHATSAPP_SEND_MODE": "text",
        "SEND_GAP_SECONDS": str(settings.send_gap_seconds),
        "RETRY_DELAY_SECONDS": str(settings.retry_delay_seconds),
        "MAX_RETRIES": str(settings.max_retries),
        # Old tests message one phone in quick succession: no recipient interval unless a test sets one.
        "RECIPIENT_INTERVAL_SECONDS": str(getattr(settings, "recipient_interval_seconds", 0)),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:
        env.pop(key, None)
    return env


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
