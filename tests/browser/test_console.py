"""The console in a real browser: logging in, live numbers, roles, CSRF, no outside requests,
searching messages by a phone written as people write it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.browser.conftest import console_env, seen
from tests.browser.server import PASSWORD, Console, csrf_token
from tests.support.processes import Proc
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import ConsoleUser, MessageLog

PageAs = Callable[[str | None], Page]


def test_an_admin_logs_in_and_a_wrong_password_is_refused(page_as: PageAs, console_server: Console) -> None:
    page = page_as(None)
    page.goto(console_server.url + "/")
    expect(page).to_have_url(console_server.url + "/login?next=/")

    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as refused:
        page.click("button[type=submit]")
    assert refused.value.status == 401
    expect(page.locator("[role=alert]")).to_have_text("Wrong user name or password.")

    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator(".account")).to_contain_text("admin")

    page.click("text=Log out")
    expect(page).to_have_url(console_server.url + "/login")
    page.goto(console_server.url + "/messages")
    expect(page).to_have_url(console_server.url + "/login?next=/messages")


def test_the_overview_shows_published_events_without_a_reload(page_as: PageAs, console_server: Console,
                                                               console_settings: Settings, sessions) -> None:
    # Given a viewer watching the overview, refreshed every 2 s, and nothing waiting
    page = page_as("viewer")
    page.goto(console_server.url + "/?refresh=2")
    waiting = page.locator("#stat-waiting .stat-value")
    expect(waiting).to_have_text("0")
    page.evaluate("window.notReloaded = true")
    notifier = Proc(["run", "notifier"], console_env(console_settings), ready="consuming", name="notifier")
    try:
        # When three members register (no sender runs, so their welcomes wait)
        with EventPublisher(console_settings.amqp_url, console_settings.namespace, source="tests") as publisher:
            for n in range(3):
                publisher.publish("member.registered", {"member_id": f"M-{n}", "name": "Budi", "phone": f"0811404070{n}"})
        # Then the page shows them within a few refreshes, by itself
        expect(waiting).to_have_text("3", timeout=20_000)
        expect(page.locator("#next tbody tr")).to_have_count(3)
    finally:
        notifier.close()
    assert page.evaluate("window.notReloaded") is True
    assert any("/overview/live?refresh=2" in url for url in seen(page).requests)


def test_a_viewer_sees_no_action_and_a_forged_action_is_refused(page_as: PageAs, console_server: Console,
                                                                 engine) -> None:
    page = page_as("viewer")
    for link in [a.get_attribute("href") for a in page.locator(".sidebar nav a").all()]:
        page.goto(console_server.url + str(link))
        actions = page.locator("form[method=post]:not([action='/logout'])")
        assert actions.count() == 0, f"{link} shows a viewer {actions.count()} action form(s)"
    assert "/users" not in [a.get_attribute("href") for a in page.locator(".sidebar nav a").all()]

    reply = page.request.post(console_server.url + "/users/add", form={
        "csrf_token": csrf_token(page), "username": "mallory", "role": "admin",
        "password": "x" * 12, "password2": "x" * 12})
    assert reply.status == 403
    assert _user(engine, "mallory") is None


def test_a_post_without_the_csrf_token_is_refused(page_as: PageAs, console_server: Console, engine) -> None:
    page = page_as("admin")
    form: dict[str, str | float | bool] = {"username": "eve", "role": "viewer", "password": "y" * 12, "password2": "y" * 12}
    assert page.request.post(console_server.url + "/users/add", form=form).status == 403
    assert page.request.post(console_server.url + "/users/add", form={**form, "csrf_token": "forged"}).status == 403
    assert _user(engine, "eve") is None

    assert page.request.post(console_server.url + "/users/add", form={**form, "csrf_token": csrf_token(page)}).ok
    assert _user(engine, "eve") is not None


def test_no_page_loads_anything_from_outside_the_server(page_as: PageAs, console_server: Console, sessions) -> None:
    message_id = _add_message(sessions, "+628114040707")
    page = page_as("admin")
    links = [str(a.get_attribute("href")) for a in page.locator(".sidebar nav a").all()]
    for path in [*links, f"/messages/{message_id}", "/messages?phone=08114040707"]:
        page.goto(console_server.url + path)
        page.wait_for_load_state("networkidle")
    outside = [url for url in seen(page).requests if not url.startswith(console_server.url + "/")]
    assert outside == []
    assert len(seen(page).requests) > len(links) * 4  # pages, scripts, styles and fragments were all recorded
    blocked = [m for m in seen(page).console if "Content Security Policy" in m]
    assert blocked == []


def test_a_phone_in_local_form_finds_its_message_shown_masked(page_as: PageAs, console_server: Console,
                                                               sessions) -> None:
    wanted = _add_message(sessions, "+628114040707")
    _add_message(sessions, "+628114040708")
    page = page_as("viewer")
    page.goto(console_server.url + "/messages")
    page.fill("input[name=phone]", "0811-4040-707")
    page.click("button:has-text('Search')")

    expect(page).to_have_url(console_server.url + "/messages?phone=0811-4040-707&event_id=&id=&template=&status=&from=&to=")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(str(wanted))
    expect(rows.first).to_contain_text("6281******07")
    assert "8114040707" not in page.locator("main").inner_html().replace('value="0811-4040-707"', "")

    rows.first.locator("a").first.click()
    expect(page.locator("#variables")).to_contain_text('"phone": "081******07"')
    assert "8114040707" not in page.content()


def _add_message(sessions, recipient: str) -> int:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        message = MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                             recipient=recipient, body="Halo Budi", priority="normal", status="sent",
                             variables={"name": "Budi", "phone": "08" + recipient[4:]})
        session.add(message)
        session.flush()
        return message.id


def _user(engine, name: str) -> ConsoleUser | None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.scalar(select(ConsoleUser).where(ConsoleUser.username == name))
