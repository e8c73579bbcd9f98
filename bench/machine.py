"""What the numbers were measured on."""

from __future__ import annotations

import contextlib
import hashlib
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import pika
import psutil
from sqlalchemy import create_engine, text

from bench.config import AMQP_URL, DATABASE_URL, PROJECT_ROOT


def describe() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(memory.total / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "rabbitmq": _rabbitmq_version(),
        "postgresql": _postgres_version(),
        "code_digest": code_digest(),
        "packages": {name: _version(name) for name in ("aio-pika", "pika", "sqlalchemy", "psycopg2-binary", "celery")},
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _rabbitmq_version() -> str:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unreachable ({type(exc).__name__})"
    try:
        version = connection._impl.server_properties.get("version", b"?")  # the broker's own greeting
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        connection.close()


def _postgres_version() -> str:
    engine = create_engine(DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # noqa: BLE001
        return f"unreachable ({type(exc).__name__})"
    finally:
        engine.dispose()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def code_digest() -> str:
    """A short hash of the product's Python files: which code the numbers belong to."""
    digest = hashlib.sha256()
    for folder in ("consumers", "shared", "producers", "ops"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
