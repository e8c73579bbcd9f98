"""The fake WhatsApp provider in a process of its own, so its CPU is not the sender's.

It runs ``bench.fake_server`` (the product's fake, quiet, with an earlier arrival stamp;
``nagle=True`` leaves Nagle's algorithm on: each answer then waits ~40 ms for a delayed ACK).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import requests

from bench.procs import Proc


class FakeProvider:
    def __init__(self, log_dir: Path, name: str = "fake-provider", *, nagle: bool = False) -> None:
        args = ["-m", "bench.fake_server", "--port", "0", *(["--nagle"] if nagle else [])]
        self.proc = Proc(name, args, _env(), log_dir)
        line = self.proc.wait_for_log("listening on")
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        self.url = match.group(1)
        self._http = requests.Session()

    def calls(self) -> list[dict[str, Any]]:
        response = self._http.get(f"{self.url}/_fake/calls", timeout=30)
        response.raise_for_status()
        return [c for c in response.json() if c.get("route") in ("meta", "gateway")]

    def count(self) -> int:
        return len(self.calls())

    def reset(self) -> None:
        self._http.delete(f"{self.url}/_fake/calls", timeout=10).raise_for_status()

    def wait_for(self, n: int, timeout: float, poll: float = 0.5) -> list[dict[str, Any]]:
        """Calls once there are ``n`` (or whatever came when ``timeout`` ran out)."""
        deadline = time.monotonic() + timeout
        calls = self.calls()
        while len(calls) < n and time.monotonic() < deadline:
            time.sleep(poll)
            calls = self.calls()
        return calls

    def stop(self) -> None:
        self._http.close()
        self.proc.stop()


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONUNBUFFERED": "1"}
