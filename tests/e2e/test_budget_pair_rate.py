"""Meta's 131056 (pair rate hit): that recipient backs off 4^X s, with no attempt spent."""

from __future__ import annotations

from typing import Any

from tests.e2e.scenario import gaps
from tests.support.db import messages
from tests.support.pool import JITTER, fresh_recipients
from tests.support.processes import wait_until

__all__ = ["fresh_recipients"]  # the fixture, used by name


def message(phone: str, text: str) -> dict[str, Any]:
    return {"phone": phone, "template": "test_message", "priority": "normal", "variables": {"sent_at": text}}


def test_two_pair_rate_hits_back_the_recipient_off_one_then_four_seconds_without_spending_an_attempt(
        stack, publisher, fake_provider, sessions, settings, fresh_recipients):
    # Given a sender at a 0.2 s gap (no recipient interval) whose provider answers 131056 twice
    stack.settings = settings.with_(send_gap_seconds=0.2, max_retries=0)
    stack.start("notifier")
    stack.start("sender")
    fake_provider.fail_next(2, mode="pair")
    # When a recipient's message meets them
    publisher.publish("notification.requested", message("081299900000", "hit"))
    hit = fake_provider.wait_for_calls(3, timeout=60)
    waits = gaps(hit)
    print(f"the recipient's calls: {[c['status'] for c in hit]}, {[round(w, 3) for w in waits]} s apart")
    # Then its three calls are 1 s and then 4 s apart (4^0, 4^1), and it was sent in the end
    assert len(hit) == 3 and waits[0] >= 1.0 - JITTER and waits[1] >= 4.0 - JITTER
    row = wait_until(lambda: next((m for m in messages(sessions) if m.recipient.endswith("81299900000")
                                   and m.status == "sent"), None), 15, "the held message sent")
    # without spending its attempts (MAX_RETRIES is 0: a spent one would have made it dead)
    assert row.attempts == 1
