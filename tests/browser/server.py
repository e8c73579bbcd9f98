"""The console as a user runs it (``wanotify run web --only console`` in its own process), its
test accounts, and a Chromium that Playwright drives (Debian's, never a downloaded one)."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from tests.support.processes import Proc
from wanotify.ops.admin.users import Role, add_user
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import ConsoleUser

PASSWORD = "correct horse battery staple"
ROLES = ("viewer", "operator", "admin")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class Console:
    url: str  # http://127.0.0.1:PORT
    proc: Proc

    def log(self) -> str:
        return self.proc.log()


def add_users(sessions: sessionmaker[Session], password: str = PASSWORD) -> dict[str, str]:
    """One account per role, named after it (replacing any left by an earlier run); name -> password."""
    with transaction(sessions) as session:
        session.execute(delete(ConsoleUser).where(ConsoleUser.username.in_(ROLES)))
        for role in ROLES:
            add_user(session, role, Role.parse(role), password)
    return {role: password for role in ROLES}


@contextmanager
def console(env: dict[str, str]) -> Iterator[Console]:
    """``wanotify run web --only console`` on a free port of 127.0.0.1, stopped at the end."""
    env = {"WEB_SECRET_KEY": secrets.token_urlsafe(48), **env}
    proc = Proc(["run", "web", "--only", "console", "--host", "127.0.0.1", "--port", "0"], env,
                ready="web: serving", name="console")
    try:
        port = re.search(r"serving console on http://127\.0\.0\.1:(\d+)/", proc.log())
        assert port, proc.log()
        yield Console(f"http://127.0.0.1:{port.group(1)}", proc)
    finally:
        proc.terminate()
        proc.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium under Playwright: it cannot download browsers of its own here."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("no chromium on PATH: `apt-get install chromium` (scripts/setup.sh does it as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def csrf_token(page: Page) -> str:
    """The page's CSRF token (every page has it in the body's htmx headers and in its forms)."""
    token: Any = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert isinstance(token, str) and token
    return token
