"""The product's processes for one test or chaos run, started as a user starts them."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import Proc, wanotify_env
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.shared.config import Settings


class Stack:
    """The product's processes for one test, started as a user starts them."""

    def __init__(self, settings: Settings, provider: FakeProviderServer) -> None:
        self.settings = settings
        self.provider = provider
        self.procs: list[Proc] = []

    def env(self, **extra: object) -> dict[str, str]:
        return wanotify_env(self.settings, self.provider.url, **extra)

    def start(self, role: str, **extra: object) -> Proc:
        proc = Proc(["run", role], self.env(**extra), ready="consuming", name=role)
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, **extra: object) -> str:
        done = subprocess.run([sys.executable, "-m", "wanotify.ops.cli", *args], env=self.env(**extra), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise AssertionError(f"wanotify {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def close(self) -> None:
        for proc in self.procs:
            proc.close()
