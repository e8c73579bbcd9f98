"""The console's Senders page in a real browser: viewers read, operators pause and resume a
number, admins add (never a secret), change, disable and enable one; every change audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.server import Console, csrf_token
from tests.support.db import sender_state
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import AuditEntry, MessageLog, SenderRow

PageAs = Callable[[str | None], Page]
TOKEN = "EAAGm0PX4ZCpsBAKZCe1xTokenValue1234567890abcdef"


@pytest.fixture
def pool(sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """Two fake senders, a and b."""
    _clean(sessions)
    with transaction(sessions) as session:
        session.add_all([SenderRow(name=n, provider="fake", settings={}, gap_min_seconds=0.2) for n in ("a", "b")])
    yield sessions
    _clean(sessions)


def _clean(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE senders, recipients, sender_contacts"))


def last_audit(sessions: sessionmaker[Session], action: str) -> AuditEntry | None:
    with sessions() as session:
        return session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc())).first()


def test_a_viewer_sees_the_numbers_and_no_action(page_as: PageAs, console_server: Console, pool) -> None:
    page = page_as("viewer")
    page.goto(console_server.url + "/senders")
    expect(page.locator("#senders tbody tr")).to_have_count(2)
    expect(page.locator("#sender-a")).to_contain_text("active")
    assert page.locator("form[method=post]:not([action='/logout'])").count() == 0
    reply = page.request.post(console_server.url + "/senders/a/pause", form={"csrf_token": csrf_token(page)})
    assert reply.status == 403


def test_an_operator_pauses_one_number_for_a_while_and_resumes_it(page_as: PageAs, console_server: Console,
                                                                    console_settings: Settings, pool) -> None:
    page = page_as("operator")
    page.goto(console_server.url + "/senders")
    assert page.locator("#add-sender").count() == 0  # adding numbers is for admins
    row = page.locator("#sender-a")
    row.locator("input[name=duration]").fill("2h")
    row.locator("input[name=reason]").fill("quality review")
    row.locator("button:has-text('Pause')").click()
    expect(page.locator(".flash-ok")).to_contain_text("Sender a paused until")
    expect(page.locator("#sender-a")).to_contain_text("paused")
    expect(page.locator("#sender-b")).to_contain_text("active")
    state = sender_state(pool, console_settings.namespace, "a")
    assert state is not None and "quality review" in (state.pause_reason or "")
    entry = last_audit(pool, "sending.pause")
    assert entry is not None and (entry.actor, entry.target) == ("operator", {"sender": "a", "seconds": 7200.0})
    # The overview shows both numbers: a paused for two hours (not "until someone resumes"), b
    # free, so the pool is not paused; and each number's queues.
    page.goto(console_server.url + "/?refresh=off")
    expect(page.locator("#pool")).to_contain_text("2 (1 active, 1 paused)")
    expect(page.locator("#sender-state")).not_to_have_text("paused")
    expect(page.locator("#senders tbody tr")).to_have_count(2)
    paused = page.locator("#senders tbody tr", has_text="quality review")
    expect(paused).to_contain_text("from now")
    expect(paused).not_to_contain_text("until someone resumes")
    expect(page.locator("#queues")).to_contain_text(f"{console_settings.namespace}.send.a")
    page.goto(console_server.url + "/senders")
    page.locator("#sender-a button:has-text('Resume')").click()
    expect(page.locator(".flash-ok")).to_have_text("Sender a resumed.")
    expect(page.locator("#sender-a")).to_contain_text("active")


def test_an_admin_adds_a_number_by_its_token_variable_never_the_token(page_as: PageAs, console_server: Console,
                                                                       pool) -> None:
    page = page_as("admin")
    page.goto(console_server.url + "/senders")
    form = page.locator("#add-sender form")
    form.locator("input[name=name]").fill("sales")
    form.locator("select[name=provider]").select_option("meta")
    form.locator("input[name=phone_number_id]").fill("1234567890")
    form.locator("input[name=token_env]").fill(TOKEN)
    form.locator("button[type=submit]").click()
    expect(page.locator(".flash-error")).to_contain_text("looks like the secret itself")
    with pool() as session:
        assert session.get(SenderRow, "sales") is None
    form.locator("input[name=name]").fill("sales")
    form.locator("select[name=provider]").select_option("meta")
    form.locator("input[name=phone_number_id]").fill("1234567890")
    form.locator("input[name=token_env]").fill("WA_TOKEN_SALES")
    form.locator("input[name=daily_limit]").fill("250")
    form.locator("button[type=submit]").click()
    expect(page.locator(".flash-ok")).to_have_text("Added sender sales.")
    expect(page.locator("#sender-sales")).to_contain_text("250")
    entry = last_audit(pool, "sender.add")
    assert entry is not None and (entry.actor, entry.target) == ("admin", {"sender": "sales", "provider": "meta"})
    # Its page names the variable and whether it is set, and changes only what is filled in
    page.locator("#sender-sales a").click()
    expect(page.locator("#secret-WA_TOKEN_SALES")).to_contain_text("$WA_TOKEN_SALES — not set")
    page.locator("#sender-form input[name=daily_limit]").fill("1000")
    page.locator("#sender-form button[type=submit]").click()
    expect(page.locator(".flash-ok")).to_have_text("Changed daily_limit.")
    with pool() as session:
        row = session.get(SenderRow, "sales")
        assert row is not None and (row.daily_limit, row.settings) == (
            1000, {"phone_number_id": "1234567890", "token_env": "WA_TOKEN_SALES"})


def test_an_admin_disables_and_enables_a_number_but_never_the_last_one(page_as: PageAs, console_server: Console,
                                                                        pool) -> None:
    page = page_as("admin")
    page.goto(console_server.url + "/senders")
    page.locator("#sender-b button:has-text('Disable')").click()
    expect(page.locator(".flash-ok")).to_contain_text("Sender b is disabled")
    expect(page.locator("#sender-b")).to_contain_text("disabled")
    page.locator("#sender-a button:has-text('Disable')").click()
    expect(page.locator(".flash-error")).to_contain_text("'a' is the last active sender")
    page.locator("#sender-b button:has-text('Enable')").click()
    expect(page.locator("#sender-b")).to_contain_text("active")
    assert last_audit(pool, "sender.disable") is not None


def test_the_actions_pause_without_a_default_sender_points_to_the_senders_page(page_as: PageAs, console_server: Console,
                                                                             pool) -> None:
    page = page_as("operator")
    page.goto(console_server.url + "/actions")
    page.locator("#pause").click()
    expect(page.locator(".flash-error")).to_contain_text("unknown sender 'default' (senders: a, b)")
    expect(page.locator(".flash-error")).to_contain_text("the Senders page pauses each number")


def test_the_overview_says_the_backlog_never_drains_while_its_sender_is_paused_until_resumed(
        page_as: PageAs, console_server: Console, console_settings: Settings, pool) -> None:
    with transaction(pool) as session:
        session.add(MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                               recipient="+628114040707", body="Halo", priority="normal", status="queued", sender="a"))
    try:
        page = page_as("operator")
        page.goto(console_server.url + "/senders")
        page.locator("#sender-a button:has-text('Pause')").click()  # no duration: until resumed
        expect(page.locator(".flash-ok")).to_contain_text("until resumed")
        page.goto(console_server.url + "/?refresh=off")
        expect(page.locator("#stat-drain")).to_contain_text("never")
        expect(page.locator("#senders tbody tr").first).to_contain_text("until someone resumes")
    finally:
        with transaction(pool) as session:
            session.execute(delete(MessageLog).where(MessageLog.sender == "a", MessageLog.status == "queued"))
