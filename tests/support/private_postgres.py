"""A throw-away PostgreSQL server of a test's own, which the test may stop and start.

The shared server on 5432 must never be restarted; a test that needs a real restart of "the
app's database" starts its own cluster in a temporary directory (initdb and pg_ctl, run as the
``postgres`` user when the tests run as root) on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


class PrivatePostgres:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        command = [_tool("pg_ctl") or "pg_ctl", "-D", str(self.directory / "data"), "-w", *args]
        subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._pg_ctl("-l", str(self.directory / "log"), "-o",
                     f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    initdb = _tool("initdb")
    if initdb is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no initdb/pg_ctl here to run a private PostgreSQL server")
    directory = Path(tempfile.mkdtemp(prefix="wanotify-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    server = PrivatePostgres(directory, _free_port())
    subprocess.run(_as_postgres([initdb, "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
