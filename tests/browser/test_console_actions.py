"""The console's action pages in a real browser, against the real pipeline and the fake
provider: replaying dead letters, a bulk replay's confirmation, editing a template, the urgent
send, pausing and resuming."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from tests.browser.conftest import console_env
from tests.browser.server import Console
from tests.e2e.scenario import gaps, member
from tests.support.db import dead_events, messages
from tests.support.processes import Proc, wait_until
from tests.support.provider_process import ProviderProcess
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import AuditEntry, Template

PageAs = Callable[[str | None], Page]
# On this loaded two-core machine the provider notes arrivals a few milliseconds early or late,
# even in a process of its own; the sender's own tests pin the gap down to the millisecond. What
# these tests check is that pausing and the urgent send keep the gap at all.
CLOCK_NOISE = 0.01


class Pipeline:
    """The notifier and the sender of the console's namespace, calling the fake provider (in a
    process of its own: the browser driver in this one would delay its clock readings)."""

    def __init__(self, settings: Settings, provider: ProviderProcess) -> None:
        self.settings, self.provider = settings, provider
        self.procs: list[Proc] = []

    def start(self, gap: float = 0.2) -> Pipeline:
        env = console_env(self.settings, WHATSAPP_API_BASE_URL=self.provider.url, SEND_GAP_SECONDS=gap)
        self.procs += [Proc(["run", role], env, ready="consuming", name=role) for role in ("notifier", "sender")]
        return self

    def publish(self, event_type: str, data: dict[str, object]) -> str:
        with EventPublisher(self.settings.amqp_url, self.settings.namespace, source="tests") as publisher:
            return publisher.publish(event_type, data)

    def close(self) -> None:
        for proc in self.procs:
            proc.close()


@pytest.fixture
def provider() -> Iterator[ProviderProcess]:
    running = ProviderProcess()
    yield running
    running.close()


@pytest.fixture
def pipeline(console_settings: Settings, provider: ProviderProcess, sessions) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    running = Pipeline(console_settings, provider)
    yield running
    running.close()


def test_a_dead_message_replayed_from_the_page_reaches_the_provider_exactly_once(
        page_as: PageAs, console_server: Console, pipeline: Pipeline, provider: ProviderProcess, sessions) -> None:
    pipeline.start()
    provider.fail_next(1, "permanent")
    pipeline.publish("member.registered", member(1))
    [dead] = wait_until(lambda: [m for m in messages(sessions) if m.status == "dead"], 20, "a dead message")
    # When an operator replays it from the Dead letters page
    page = page_as("operator")
    page.goto(console_server.url + "/dead")
    row = page.locator(f"#row-m{dead.id}")
    expect(row).to_contain_text("meta_131026")
    row.locator("button:has-text('Replay')").click()
    expect(page.locator(".flash-ok")).to_have_text("1 message(s) and 0 event(s) replayed.")
    expect(page.locator(f"#row-m{dead.id}")).to_have_count(0)
    # Then the provider gets it once more, and only once
    wait_until(lambda: messages(sessions)[0].status == "sent", 20, "the replayed message to be sent")
    time.sleep(1.0)
    assert len(provider.calls()) == 2
    with transaction(sessions) as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (entry.actor, entry.action, entry.target, entry.count) == ("operator", "dead.replay", {"ids": [f"m{dead.id}"]}, 1)


def test_a_bulk_replay_shows_its_dry_run_count_and_asks_before_doing_it(
        page_as: PageAs, console_server: Console, pipeline: Pipeline, sessions) -> None:
    pipeline.start()
    for i in range(3):
        pipeline.publish("member.registered", member(i) | {"phone": f"1{i}"})  # invalid numbers: parked
    wait_until(lambda: len(dead_events(sessions)) == 3, 20, "three parked events")
    page = page_as("operator")
    page.goto(console_server.url + "/dead?reason=invalid_phone")
    page.evaluate("window.notReloaded = true")
    page.click("#replay-all")
    # The dry run's count is swapped into the page, and nothing is replayed yet
    expect(page.locator("#dry-run-count")).to_have_text("3")
    expect(page.locator("#dry-run")).to_contain_text("0 message(s) and 3 event(s)")
    assert page.evaluate("window.notReloaded") is True
    assert [e.status for e in dead_events(sessions)] == ["parked"] * 3
    # Confirming replays those three (they are parked again, under the same ids: the numbers are still bad)
    page.click("#confirm-action")
    expect(page.locator(".flash-ok")).to_have_text("0 message(s) and 3 event(s) replayed.")
    ids = [e.id for e in dead_events(sessions)]
    wait_until(lambda: [e.status for e in dead_events(sessions)] == ["parked"] * 3, 20, "the events parked again")
    assert [e.id for e in dead_events(sessions)] == ids


@pytest.fixture
def welcome_restored(sessions) -> Iterator[None]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        original = session.scalar(select(Template.body).where(Template.key == "welcome_new_member"))
    yield
    with transaction(sessions) as session:
        session.execute(update(Template).where(Template.key == "welcome_new_member").values(body=original))


def test_a_template_edit_shows_a_live_preview_and_takes_effect_for_the_next_event(
        page_as: PageAs, console_server: Console, pipeline: Pipeline, provider: ProviderProcess,
        welcome_restored: None) -> None:
    page = page_as("admin")
    page.goto(console_server.url + "/templates/welcome_new_member")
    body = page.locator("textarea[name=body]")
    # A typo shows its reason as you type
    body.fill("Selamat datang {{ nmae }}!")
    expect(page.locator("#preview-error")).to_contain_text("did you mean 'name'?")
    # The fixed text shows the message for sample data
    body.fill("Selamat datang {{ name | upper }}!")
    expect(page.locator("#preview-text")).to_have_text("Selamat datang BUDI!")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash-ok")).to_have_text("Template welcome_new_member saved.")
    expect(page.locator("#history tbody tr").first).to_contain_text("+Selamat datang {{ name | upper }}!")
    # The next registration is sent with it
    pipeline.start()
    pipeline.publish("member.registered", member(7))
    [call] = provider.wait_for_calls(1, timeout=20)
    assert call["body"] == "Selamat datang MEMBER 7!"


def test_an_urgent_text_goes_before_the_waiting_messages_with_the_gap_kept(
        page_as: PageAs, console_server: Console, pipeline: Pipeline, provider: ProviderProcess) -> None:
    pipeline.start(gap=1.5)
    for i in range(6):
        pipeline.publish("member.registered", member(i))
    provider.wait_for_calls(1, timeout=20)
    page = page_as("operator")
    page.goto(console_server.url + "/actions")
    urgent = page.locator("#urgent")
    urgent.locator("input[name=phone]").fill("0811 4040 707")
    urgent.locator("textarea[name=text]").fill("Maintenance at 22:00")
    urgent.locator("button[type=submit]").click()
    expect(page.locator(".flash-ok")).to_contain_text("Queued operator_message to 6281******07 at top priority")
    sent_before = len(provider.calls())
    calls = provider.wait_for_calls(7, timeout=40)
    # Next (or, if the next slot was already being chosen as it arrived, the one after): before the other welcomes
    index = [c["body"] for c in calls].index("Maintenance at 22:00")
    assert index <= sent_before + 1 and index < len(calls) - 1
    assert min(gaps(calls)) >= 1.5 - CLOCK_NOISE


def test_pause_stops_the_calls_and_resume_restarts_them_with_the_gap_kept(
        page_as: PageAs, console_server: Console, pipeline: Pipeline, provider: ProviderProcess,
        sessions) -> None:
    pipeline.start(gap=0.5)
    page = page_as("operator")
    page.goto(console_server.url + "/actions")
    page.fill("#sending input[name=reason]", "provider maintenance")
    page.click("#pause")
    expect(page.locator("#sending-state")).to_have_text("Paused by hand — paused by hand by operator: provider maintenance")
    for i in range(3):
        pipeline.publish("member.registered", member(i))
    wait_until(lambda: len(messages(sessions)) == 3, 20, "three queued messages")
    time.sleep(2.5)
    assert provider.calls() == []
    page.click("button:has-text('Resume sending')")
    expect(page.locator("#sending-state")).to_have_text("Sending")
    calls = provider.wait_for_calls(3, timeout=20)
    assert min(gaps(calls)) >= 0.5 - CLOCK_NOISE
    assert all(p.popen.poll() is None for p in pipeline.procs)  # nothing was stopped
