"""The recipient interval: one recipient's messages are spaced, deferred without holding up others."""

from __future__ import annotations

from typing import Any

from tests.e2e.scenario import gaps
from tests.support.pool import JITTER, fresh_recipients

INTERVAL = 2.0
GAP = 0.2

__all__ = ["fresh_recipients"]  # the fixture, used by name


def message(phone: str, text: str) -> dict[str, Any]:
    return {"phone": phone, "template": "test_message", "priority": "normal", "variables": {"sent_at": text}}


def test_one_recipients_messages_keep_the_interval_while_the_others_flow_past_them(
        stack, publisher, fake_provider, settings, fresh_recipients):
    # Given a sender at a 0.2 s gap and a 2 s recipient interval
    stack.settings = settings.with_(send_gap_seconds=GAP, recipient_interval_seconds=INTERVAL)
    stack.start("notifier")
    stack.start("sender")
    # When one recipient has 5 messages queued ahead of 20 messages to 20 other recipients
    for i in range(5):
        publisher.publish("notification.requested", message("081277700000", f"busy-{i}"))
    for i in range(20):
        publisher.publish("notification.requested", message(f"0812777{i + 1:05d}", f"other-{i}"))
    calls = fake_provider.wait_for_calls(25, timeout=90)
    busy = [c for c in calls if c["to"].endswith("81277700000")]
    others = [c for c in calls if c not in busy]
    busy_gaps = gaps(busy)
    first, last = calls[0]["t"], calls[-1]["t"]
    print(f"busy recipient's calls at +{[round(c['t'] - first, 3) for c in busy]} s (gaps {[round(g, 3) for g in busy_gaps]});"
          f" the 20 others from +{others[0]['t'] - first:.3f} to +{others[-1]['t'] - first:.3f} s,"
          f" their largest gap {max(gaps(others)):.3f} s; all 25 in {last - first:.2f} s")
    # Then that recipient's calls are at least the interval apart
    assert len(busy) == 5 and len(others) == 20
    assert min(busy_gaps) >= INTERVAL - JITTER
    # and the other recipients' messages went while it waited: some between its first two calls,
    # all of them before its last, and none after a hole as long as the interval (which is what a
    # deferred message holding its queue would leave)
    assert any(busy[0]["t"] < c["t"] < busy[1]["t"] for c in others)
    assert others[-1]["t"] < busy[-1]["t"]
    assert max(gaps(others)) < INTERVAL
