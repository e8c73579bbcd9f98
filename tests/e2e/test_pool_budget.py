"""The budget in the sender's claim: a message not yet due is deferred, never blocking the rest."""

from __future__ import annotations

from tests.e2e.scenario import gaps
from tests.support.db import attempts, messages
from tests.support.pool import JITTER, numbers_cleanup
from tests.support.processes import wait_until

__all__ = ["numbers_cleanup"]  # the fixture, used by name

GAP = 0.2


def _request(phone: str, i: int) -> dict[str, object]:
    return {"phone": phone, "template": "test_message", "priority": "normal", "variables": {"sent_at": f"normal-{i}"}}


def test_messages_to_one_recipient_keep_its_interval_while_the_others_flow(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given a recipient interval of 2 s and a gap of 0.2 s
    interval = 2.0
    stack.start("notifier")
    stack.start("sender", RECIPIENT_INTERVAL_SECONDS=interval)
    # When one recipient has 3 messages queued ahead of 10 messages to others
    busy = "081277770000"
    for i in range(3):
        publisher.publish("notification.requested", _request(busy, i))
    for i in range(1, 11):
        publisher.publish("notification.requested", _request(f"08127777{i:04d}", 10 + i))
    calls = wait_until(lambda: len(c := fake_provider.calls()) >= 13 and c, 40, "13 calls")
    # Then that recipient's calls are at least the interval apart
    to_busy = [c for c in calls if c["to"].endswith("77770000")]
    print(f"calls to the busy recipient {[round(g, 3) for g in gaps(to_busy)]} s apart; all gaps >= "
          f"{min(gaps(calls)):.3f} s")
    assert len(to_busy) == 3 and min(gaps(to_busy)) >= interval - JITTER
    # and the others did not wait behind the deferred ones: all of them went before its last message
    assert all(c["t"] < to_busy[-1]["t"] for c in calls if c not in to_busy)
    assert min(gaps(calls)) >= GAP - JITTER
    # and no attempt was spent on a deferral
    rows = wait_until(lambda: (r := messages(sessions)) and all(m.status == "sent" for m in r) and r, 10, "all sent")
    assert all(m.attempts == 1 for m in rows)


def test_a_pair_rate_error_defers_the_message_without_spending_a_retry(
        stack, publisher, fake_provider, sessions, numbers_cleanup):
    # Given Meta answering the next call with 131056 (too many messages to this recipient)
    stack.start("notifier")
    stack.start("sender", MAX_RETRIES=0)
    fake_provider.fail_next(1, "pair")
    # When a message goes to that recipient
    publisher.publish("notification.requested", _request("081277779999", 1))
    # Then it is tried again after the back-off (4^0 = 1 s), and sent, its one attempt unspent
    calls = fake_provider.wait_for_calls(2, timeout=30)
    print(f"resent {calls[1]['t'] - calls[0]['t']:.3f} s after the pair-rate error")
    assert calls[1]["t"] - calls[0]["t"] >= 1.0 - JITTER
    [row] = wait_until(lambda: (r := messages(sessions)) and r[0].status == "sent" and r, 10, "the message sent")
    assert row.attempts == 1
    assert [a.outcome for a in attempts(sessions, row.id)] == ["deferred", "sent"]
