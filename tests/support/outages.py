"""Stopping and restarting the local RabbitMQ and PostgreSQL, always bringing them back.

These control the services installed on this machine (the CI machine runs the same ones).
Where they are not local (AMQP_URL/DATABASE_URL elsewhere, or containers), tests that need
outages are skipped — except in CI, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import port_open


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _require(tool: str) -> None:
    if shutil.which(tool) is None or os.environ.get("AMQP_URL") or os.environ.get("DATABASE_URL"):
        message = f"outage tests need the local services and {tool}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} did not come back within {timeout}s")
        time.sleep(0.2)


@contextlib.contextmanager
def rabbitmq_down() -> Iterator[None]:
    """The broker application stopped (every connection dropped), then started again."""
    _require("rabbitmqctl")
    try:
        _run("rabbitmqctl", "stop_app")
        yield
    finally:
        _run("rabbitmqctl", "start_app")
        _run("rabbitmqctl", "await_startup")
        _wait_port(5672)


def _pg_cluster() -> tuple[str, str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    return version, "main"


@contextlib.contextmanager
def postgres_down() -> Iterator[None]:
    """PostgreSQL stopped (fast shutdown: sessions are cut), then started again."""
    _require("pg_ctlcluster")
    version, cluster = _pg_cluster()
    try:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "stop", "-m", "fast")
        yield
    finally:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start")
        _wait_port(5432)


def restart_rabbitmq() -> None:
    with rabbitmq_down():
        pass


def restart_postgres() -> None:
    with postgres_down():
        pass
