"""Session fixtures: a real broker and database, a unique namespace and database per session.

Each test gets its own namespace (queue prefix) inside the session's, and the message tables
are emptied before it, so tests never see each other's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.broker import delete_namespace
from tests.support.services import migrated_database, postgres_server_url, rabbitmq_url
from tests.support.stack import Stack
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    with rabbitmq_url() as url:
        yield url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with postgres_server_url() as server, migrated_database(server, f"wanotify_test_{SESSION_ID}") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    """Sessions on the test database, with message tables emptied and settings reset first."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE whatsapp_logs, whatsapp_attempts, dead_events, sender_state, sender_processes, settings, "
                          "status_outbox"))
    yield session_factory(engine)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, amqp_url: str) -> Iterator[str]:
    name = f"wt{SESSION_ID}-{uuid.uuid4().hex[:6]}"
    yield name
    delete_namespace(amqp_url, name)


@pytest.fixture
def settings(amqp_url: str, database_url: str, namespace: str) -> Settings:
    """Short gaps and delays for tests; the defaults are tested on their own."""
    return Settings.from_env({}).with_(
        amqp_url=amqp_url, database_url=database_url, namespace=namespace,
        send_gap_seconds=0.2, retry_delay_seconds=1.0, max_retries=3,
        # Most tests message one phone quickly: the recipient interval is tested on its own.
        recipient_interval_seconds=0.0)


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


@pytest.fixture
def stack(settings: Settings, fake_provider: FakeProviderServer, sessions) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    s = Stack(settings, fake_provider)
    yield s
    s.close()
