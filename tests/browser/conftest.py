"""Fixtures for browser tests of the console: a real server, real accounts, Debian's Chromium.

- ``console_settings`` (module): the settings the module's processes share — the session's
  broker and database, a namespace of the module's own.
- ``console_server`` (module): ``wanotify run web --only console`` on a free port, started as a
  user starts it, with one account per role (``viewer``, ``operator``, ``admin``, password
  ``server.PASSWORD``). ``console_server.url`` is ``http://127.0.0.1:PORT``.
- ``browser`` (session): Chromium driven by Playwright (``server.chromium``).
- ``page_as`` (function): ``page_as("operator")`` is a new browser page, logged in as that
  role, on the overview. ``seen(page)`` has every request URL it made (``.requests``) and every
  console message (``.console``). ``page_as(None)`` is a page not logged in.
- ``sessions`` (from tests/conftest.py): the database, with the message tables emptied.

A test that needs the pipeline starts it with ``tests.support.processes.Proc`` and
``console_env(console_settings)`` (the notifier, say) and publishes with ``EventPublisher``.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.server import Console, add_users, chromium, console, log_in
from tests.conftest import SESSION_ID
from tests.support.broker import delete_namespace
from tests.support.processes import wanotify_env
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import session_factory

NOWHERE = "http://127.0.0.1:9"  # no provider: the console's tests never send


@dataclass
class Seen:
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


_SEEN: weakref.WeakKeyDictionary[Page, Seen] = weakref.WeakKeyDictionary()


def seen(page: Page) -> Seen:
    """What a page from ``page_as`` requested and logged so far."""
    return _SEEN[page]


def console_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment of the module's processes (the console, a notifier…)."""
    return wanotify_env(settings, NOWHERE, **extra)


@pytest.fixture(scope="module")
def console_settings(amqp_url: str, database_url: str) -> Iterator[Settings]:
    namespace = f"wt{SESSION_ID}-ui{uuid.uuid4().hex[:6]}"
    yield Settings.from_env({}).with_(amqp_url=amqp_url, database_url=database_url, namespace=namespace,
                                      send_gap_seconds=0.2)
    delete_namespace(amqp_url, namespace)


@pytest.fixture(scope="module")
def console_server(console_settings: Settings, engine) -> Iterator[Console]:  # type: ignore[no-untyped-def]
    add_users(session_factory(engine))
    with console(console_env(console_settings)) as served:
        yield served


# Per module, not per session: Playwright's sync API keeps an event loop running in this
# thread while it is open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page_as(browser: Browser, console_server: Console) -> Iterator[Callable[[str | None], Page]]:
    contexts = []

    def open_page(role: str | None) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        record = _SEEN[page] = Seen()
        page.on("request", lambda request: record.requests.append(request.url))
        page.on("console", lambda message: record.console.append(message.text))
        if role is not None:
            log_in(page, console_server.url, role)
        return page

    yield open_page
    for context in contexts:
        context.close()
