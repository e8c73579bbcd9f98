"""Session fixtures: a real broker and database, a unique namespace and database per session.

Each test gets its own namespace (queue prefix) inside the session's, and the message tables
are emptied before it, so tests never see each other's messages.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pika
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ops.fake_provider import FakeProviderServer
from producers.publisher import EventPublisher
from shared.config import Settings
from shared.db.engine import create_database_if_missing, drop_database, make_engine, session_factory, transaction
from shared.db.migrate import upgrade
from shared.db.seed import seed_defaults
from shared.topology import Topology, delete_topology
from tests.support.processes import Proc, wanotify_env
from tests.support.services import postgres_server_url, rabbitmq_url

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    with rabbitmq_url() as url:
        yield url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with postgres_server_url() as server:
        url = make_url(server).set(database=f"wanotify_test_{SESSION_ID}").render_as_string(hide_password=False)
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


@pytest.fixture(scope="session")
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    """Sessions on the test database, with message tables emptied and settings reset first."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE whatsapp_logs, whatsapp_attempts, dead_events, sender_state, sender_processes, settings"))
    yield session_factory(engine)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, amqp_url: str) -> Iterator[str]:
    name = f"wt{SESSION_ID}-{uuid.uuid4().hex[:6]}"
    yield name
    delete_namespace(amqp_url, name)


def delete_namespace(amqp_url: str, namespace: str) -> None:
    """Remove a test namespace's exchange and queues (retry queues found via the management API)."""
    with contextlib.suppress(Exception):
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            delete_topology(connection.channel(), Topology(namespace), _retry_queues(namespace))
        finally:
            connection.close()


def _retry_queues(namespace: str) -> list[str]:
    import requests

    with contextlib.suppress(Exception):
        reply = requests.get("http://127.0.0.1:15672/api/queues/%2F", auth=("guest", "guest"), timeout=2,
                             params={"name": f"^{namespace}\\.send\\.retry", "use_regex": "true"})
        return [q["name"] for q in reply.json() if q["name"].startswith(f"{namespace}.send.retry")]
    return []


@pytest.fixture
def settings(amqp_url: str, database_url: str, namespace: str) -> Settings:
    """Short gaps and delays for tests; the defaults are tested on their own."""
    return Settings.from_env({}).with_(
        amqp_url=amqp_url, database_url=database_url, namespace=namespace,
        send_gap_seconds=0.2, retry_delay_seconds=1.0, max_retries=3)


@pytest.fixture
def fake_provider() -> Iterator[FakeProviderServer]:
    server = FakeProviderServer(timeout_sleep=3.0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def publisher(settings: Settings) -> Iterator[EventPublisher]:
    with EventPublisher(settings.amqp_url, settings.namespace, source="tests") as p:
        yield p


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
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", "ops.cli", *args], env=self.env(**extra), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise AssertionError(f"wanotify {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def close(self) -> None:
        for proc in self.procs:
            proc.close()


@pytest.fixture
def stack(settings: Settings, fake_provider: FakeProviderServer, sessions) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    s = Stack(settings, fake_provider)
    yield s
    s.close()
