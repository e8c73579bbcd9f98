"""The fake WhatsApp provider in a process of its own (``wanotify fake-provider``).

Tests that measure gaps use it: in the test's own process, the provider's threads compete for
the interpreter lock with the test (a browser driver, say), and note arrivals milliseconds late.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import requests

from tests.support.processes import Proc


class ProviderProcess:
    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WANOTIFY_", "WHATSAPP_", "LOG_"))}
        self.proc = Proc(["fake-provider", "--port", "0"], env | {"PYTHONUNBUFFERED": "1"}, ready="listening on",
                         name="fake-provider")
        found = re.search(r"listening on (http://[\d.]+:\d+)", self.proc.log())
        assert found, self.proc.log()
        self.url = found.group(1)

    def calls(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = requests.get(f"{self.url}/_fake/calls", timeout=5).json()
        return listed

    def fail_next(self, count: int, mode: str = "5xx") -> None:
        requests.post(f"{self.url}/_fake/fail", json={"mode": mode, "count": count}, timeout=5).raise_for_status()

    def wait_for_calls(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(calls := self.calls()) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {n} calls within {timeout}s, got {len(calls)}")
            time.sleep(0.1)
        return calls

    def close(self) -> None:
        self.proc.terminate()
        self.proc.close()
