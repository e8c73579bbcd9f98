"""Helpers for the sender-pool tests: numbers as sender rows, and the provider's calls by number."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from tests.e2e.scenario import gaps
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Recipient, SenderContact, SenderRow

# Arrival times are taken by the provider server, a request after the sender's clock.
JITTER = 0.002


def add_numbers(sessions, provider_url: str, names: list[str], gap: float) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Sender rows for ``names`` (Cloud API numbers at the fake provider); returns the
    environment their tokens need."""
    with transaction(sessions) as session:
        for name in names:
            session.add(SenderRow(name=name, provider="meta", gap_min_seconds=gap, settings={
                "phone_number_id": f"pn-{name}", "token_env": f"TOKEN_{name.upper()}", "base_url": provider_url}))
    return {f"TOKEN_{name.upper()}": f"token-{name}" for name in names}


def _empty(sessions, *models: type) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        for model in models:
            session.execute(delete(model))


# Both stop the test's processes before they empty the tables (``Stack.close`` may run twice): a
# notifier still routing locks recipients in its batch's order, deadlocked with the DELETE, and
# the rows it left spoiled the next test on the same database.

@pytest.fixture
def numbers_cleanup(sessions, stack) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Sender rows, contacts and recipients are not per namespace: start and end without them."""
    _empty(sessions, SenderContact, SenderRow, Recipient)
    yield
    stack.close()
    _empty(sessions, SenderContact, SenderRow, Recipient)


@pytest.fixture
def fresh_recipients(sessions, stack) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Recipients and counted contacts outlive a test (they are not per namespace): start and end empty."""
    _empty(sessions, SenderContact, Recipient)
    yield
    stack.close()
    _empty(sessions, SenderContact, Recipient)


def number_of(call: dict[str, Any]) -> str:
    """The sender a Cloud API call came from: its phone_number_id is in the path."""
    return str(call["path"]).split("/")[-2].removeprefix("pn-")


def calls_by_number(calls: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        by_number[number_of(call)].append(call)
    return dict(by_number)


def min_gaps(calls: list[dict[str, Any]]) -> dict[str, float]:
    return {number: min(gaps(own)) for number, own in calls_by_number(calls).items() if len(own) > 1}


def pinned(i: int, sender: str, priority: str = "normal") -> dict[str, Any]:
    """A notification.requested for recipient ``i`` from ``sender``."""
    return {"phone": f"0812666{i:04d}", "template": "test_message", "priority": priority, "sender": sender,
            "variables": {"sent_at": f"{priority}-{i}"}}


def label(call: dict[str, Any]) -> str:
    """The ``priority-i`` a test_message call carries in its text."""
    return str(call["body"]).split("(")[1].split(")")[0]


def high_during_a_gap(publisher, fake_provider, number: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Three low and three normal messages for ``number``, then, once two calls went, a high one
    during the gap; returns the seven calls."""
    for i in range(3):
        publisher.publish("notification.requested", pinned(i, number, "low"))
    for i in range(3, 6):
        publisher.publish("notification.requested", pinned(i, number, "normal"))
    fake_provider.wait_for_calls(2, timeout=20)
    publisher.publish("notification.requested", pinned(9, number, "high"))
    return list(fake_provider.wait_for_calls(7, timeout=30))


def assert_high_went_next(order: list[str]) -> None:
    """The high message was the very next call; the rest by priority, first in first out within one."""
    assert order[2] == "high-9"
    assert order[3:] == [p for p in ["normal-3", "normal-4", "normal-5", "low-0", "low-1", "low-2"] if p not in order[:2]]
