"""Screenshots of every console page with demo data: ``python -m tests.browser.screenshots``.

Creates a scratch database (``wanotify_screenshots`` on the local server, or the server in
DATABASE_URL), seeds a month of demo history, serves the console, and saves one PNG per
page to docs/screenshots/. Every page an admin's navigation shows is taken, so pages added
later are taken too.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
from playwright.sync_api import Page, ViewportSize

from tests.browser import demo
from tests.browser.server import add_users, chromium, console, log_in
from tests.support.services import LOCAL_PG, migrated_database
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory, transaction
from wanotify.shared.topology import Topology, declare_topology, delete_topology

OUT = Path("docs/screenshots")
NAMESPACE = "wanotify-screenshots"
VIEWPORT = ViewportSize(width=1440, height=900)
MAX_HEIGHT = 1800  # long listings are cut: the first rows show the page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server = Settings.from_env().database_url if os.environ.get("DATABASE_URL") else LOCAL_PG
    with migrated_database(server, "wanotify_screenshots") as url:
        engine = make_engine(url)
        sessions = session_factory(engine)
        with transaction(sessions) as session:
            ids = demo.seed(session, NAMESPACE)
        add_users(sessions)
        try:
            _shoot(url, sessions, ids, args.out)
        finally:
            engine.dispose()
    print(f"screenshots in {args.out}/")


def _shoot(url: str, sessions, ids: dict[str, int], out: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"DATABASE_URL": url, "WANOTIFY_NAMESPACE": NAMESPACE, "SEND_GAP_SECONDS": "10"}
    with _queues(ids["waiting"]), console(env) as served, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{served.url}/login")
        _save(page, out / "login.png", sessions)
        log_in(page, served.url, "admin")
        for href, slug in _nav(page):
            page.goto(f"{served.url}{href}")
            _save(page, out / f"{slug}.png", sessions)
        page.goto(f"{served.url}/messages?phone=0811-4040-123")
        _save(page, out / "messages-search.png", sessions)
        page.goto(f"{served.url}/messages/{ids['message']}")
        _save(page, out / "message.png", sessions)
        viewer = browser.new_page(viewport=VIEWPORT)
        log_in(viewer, served.url, "viewer")
        _save(viewer, out / "overview-viewer.png", sessions)


@contextmanager
def _queues(waiting: int) -> Iterator[None]:
    """The namespace's queues, the backlog's copies on the send queue (the overview shows their depths)."""
    amqp_url = Settings.from_env().amqp_url
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    topology = Topology(NAMESPACE)
    try:
        channel = connection.channel()
        declare_topology(channel, topology)
        for _ in range(waiting):
            channel.basic_publish("", topology.send_queue, b"{}")
        yield
    finally:
        delete_topology(connection.channel(), topology)
        connection.close()


def _nav(page: Page) -> list[tuple[str, str]]:
    links = page.eval_on_selector_all(".sidebar nav a", "els => els.map(e => e.getAttribute('href'))")
    return [(href, "overview" if href == "/" else re.sub(r"[^a-z0-9]+", "-", href.strip("/").lower())) for href in links]


def _save(page: Page, path: Path, sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        demo.heartbeat(session)
    page.reload()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # charts draw after load
    height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_HEIGHT)
    page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height})
    print(f"  {path}")


if __name__ == "__main__":
    main()
