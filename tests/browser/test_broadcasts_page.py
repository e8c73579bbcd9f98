"""The console's broadcasts page in a real browser: a viewer reads a broadcast's progress, an
operator cancels what has not been sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select

from tests.browser.server import Console
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import AuditEntry, Broadcast, MessageLog

PageAs = Callable[[str | None], Page]


@pytest.fixture
def broadcast_id(sessions) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """A broadcast of five rows: two sent, three waiting."""
    with transaction(sessions) as session:
        broadcast = Broadcast(key=uuid.uuid4().hex * 2, name="members.csv", template="welcome_new_member",
                              total_rows=5, valid_rows=5, created_by="cli:ops")
        session.add(broadcast)
        session.flush()
        for n, status in enumerate(["sent", "sent", "queued", "queued", "queued"]):
            session.add(MessageLog(event_id=uuid.uuid4(), event_type="notification.requested",
                                   template="welcome_new_member", recipient=f"+62811404070{n}", body="Halo",
                                   priority="low", status=status, broadcast_id=broadcast.id))
    yield broadcast.id
    with transaction(sessions) as session:
        session.execute(delete(MessageLog).where(MessageLog.broadcast_id == broadcast.id))
        session.execute(delete(Broadcast).where(Broadcast.id == broadcast.id))


def test_a_viewer_reads_a_broadcasts_progress_and_an_operator_cancels_the_rest(
        page_as: PageAs, console_server: Console, broadcast_id: int, sessions) -> None:  # type: ignore[no-untyped-def]
    # Given a viewer: the listing and the broadcast's statuses, and no action to take.
    viewer = page_as("viewer")
    viewer.goto(console_server.url + "/broadcasts")
    row = viewer.locator(f"#broadcast-{broadcast_id}")
    expect(row).to_contain_text("members.csv")
    row.get_by_role("link", name=str(broadcast_id)).click()
    expect(viewer.locator("#status-sent")).to_contain_text("2")
    expect(viewer.locator("#status-queued")).to_contain_text("3")
    expect(viewer.locator("#broadcast-eta")).to_contain_text("about")
    assert viewer.locator("form[method=post]:not([action='/logout'])").count() == 0

    # When an operator cancels it.
    operator = page_as("operator")
    operator.goto(f"{console_server.url}/broadcasts/{broadcast_id}")
    operator.get_by_role("button", name="Cancel what has not been sent").click()

    # Then the page says what was stopped and what had gone, and the log and the audit agree.
    expect(operator.locator(".flash-ok")).to_contain_text("3 cancelled; 2 had already gone")
    expect(operator.locator("#status-cancelled")).to_contain_text("3")
    expect(operator.locator("#status-queued")).to_contain_text("0")
    with sessions() as session:
        statuses = sorted(session.scalars(select(MessageLog.status).where(MessageLog.broadcast_id == broadcast_id)))
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "broadcast.cancel")
                                .order_by(AuditEntry.id.desc())).first()
    assert statuses == ["cancelled"] * 3 + ["sent"] * 2
    assert entry is not None and (entry.actor, entry.count) == ("operator", 3)


def test_an_unknown_broadcast_is_a_404(page_as: PageAs, console_server: Console) -> None:
    page = page_as("viewer")
    reply = page.goto(console_server.url + "/broadcasts/424242")
    assert reply is not None and reply.status == 404
    expect(page.locator("body")).to_contain_text("there is no broadcast 424242")
