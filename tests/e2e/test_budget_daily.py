"""The daily unique-recipient limit: a full sender holds new recipients, shows when room frees,
and sends them then."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.support.db import messages
from tests.support.pool import JITTER, fresh_recipients
from tests.support.processes import wait_until

LIMIT = 5
WINDOW = 30.0  # DAILY_LIMIT_WINDOW_SECONDS: a "day" of 30 s (long enough for status to see all five under load)

__all__ = ["fresh_recipients"]  # the fixture, used by name


def message(i: int) -> dict[str, Any]:
    return {"phone": f"0812888{i:05d}", "template": "test_message", "priority": "normal", "variables": {"sent_at": str(i)}}


def default_sender(snapshot: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in snapshot["senders"] if s["name"] == "default")


def test_a_full_sender_holds_the_sixth_recipient_shows_its_eta_and_sends_it_when_room_frees(
        stack, publisher, fake_provider, sessions, settings, fresh_recipients):
    # Given the single number with a daily limit of 5 recipients over a 30 s window
    limit = {"DAILY_LIMIT": LIMIT, "DAILY_LIMIT_WINDOW_SECONDS": WINDOW}
    stack.start("notifier")
    stack.start("sender", **limit)
    # When 6 recipients get a message each
    for i in range(LIMIT + 1):
        publisher.publish("notification.requested", message(i))
    first_five = fake_provider.wait_for_calls(LIMIT, timeout=30)
    wait_until(lambda: any(m.held_reason == "daily_limit" for m in messages(sessions)), 15, "the 6th message held")
    # Then status shows the sender full, with when room frees and the held message's due time
    snapshot = json.loads(stack.cli("status", "--json", **limit))
    shown = default_sender(snapshot)
    daily, held = shown["daily"], shown["held"]
    print(f"status: daily {daily}, held {held}")
    assert (daily["used"], daily["limit"], daily["full"]) == (LIMIT, LIMIT, True)
    assert 0 < daily["eta_seconds"] <= WINDOW
    assert [(h["reason"], h["count"]) for h in held] == [("daily_limit", 1)]
    assert len(fake_provider.calls()) == LIMIT  # the 6th has not gone
    # and it goes once the first recipient leaves the window, not before
    calls = fake_provider.wait_for_calls(LIMIT + 1, timeout=WINDOW + 30)
    sixth = calls[LIMIT]
    due = datetime.fromisoformat(held[0]["next_due"]).timestamp()
    print(f"first call at 0 s, the 6th at +{sixth['t'] - first_five[0]['t']:.3f} s (window {WINDOW} s);"
          f" status said room in {daily['eta_seconds']:.2f} s, due at +{due - first_five[0]['t']:.3f} s")
    assert sixth["t"] - first_five[0]["t"] >= WINDOW - JITTER
    assert sixth["to"] not in {c["to"] for c in first_five}
