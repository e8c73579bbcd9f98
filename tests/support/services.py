"""Finding (or starting) RabbitMQ and PostgreSQL for the test session.

Order: AMQP_URL / DATABASE_URL from the environment; else the local services on
127.0.0.1; else, if Docker answers, testcontainers. In CI a missing service fails the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


@contextlib.contextmanager
def rabbitmq_url() -> Iterator[str]:
    if os.environ.get("AMQP_URL"):
        yield os.environ["AMQP_URL"]
    elif port_open("127.0.0.1", 5672):
        yield LOCAL_AMQP
    elif docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
    else:
        pytest.fail("no RabbitMQ: set AMQP_URL, start one on 127.0.0.1:5672 (rabbitmq-server -detached), or Docker")


@contextlib.contextmanager
def postgres_server_url() -> Iterator[str]:
    """A URL of the server's ``postgres`` database; the tests create their own from it."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
    elif port_open("127.0.0.1", 5432):
        yield LOCAL_PG
    elif docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg2") as container:
            yield container.get_connection_url()
    else:
        pytest.fail("no PostgreSQL: set DATABASE_URL, start one on 127.0.0.1:5432, or Docker")


@contextlib.contextmanager
def migrated_database(server_url: str, name: str) -> Iterator[str]:
    """A new database on the server, migrated and seeded; dropped afterwards."""
    from sqlalchemy.engine import make_url

    from wanotify.shared.db.engine import create_database_if_missing, drop_database, make_engine, session_factory, transaction
    from wanotify.shared.db.migrate import upgrade
    from wanotify.shared.db.seed import seed_defaults

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    create_database_if_missing(url)
    try:
        upgrade(url)
        engine = make_engine(url, pool_size=1)
        with transaction(session_factory(engine)) as session:
            seed_defaults(session)
        engine.dispose()
        yield url
    finally:
        drop_database(url)
