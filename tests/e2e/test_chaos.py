"""Chaos: kills, a broker restart and a database restart while 300 events are in flight.

Every event must end as exactly one log row, sent or dead. Duplicate provider calls can
only come from a sender killed after its request left and before the outcome was committed
(the ambiguous-call window, resent by policy), so there can be at most one per kill.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.e2e.scenario import member
from tests.support.db import messages
from tests.support.outages import restart_postgres, restart_rabbitmq
from tests.support.processes import wait_until

EVENTS = 300
KILLS = 3


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(send_gap_seconds=0.03, retry_delay_seconds=0.5, max_retries=3)


@pytest.mark.slow
def test_every_event_ends_as_one_sent_or_dead_row_through_kills_and_restarts(stack, publisher, fake_provider, sessions):
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    fake_provider.set_failure_rate(0.3, "5xx", seed=seed)
    stack.start("notifier")
    senders = [stack.start("sender", RETRY_SWEEP_SECONDS=2)]
    for i in range(EVENTS):
        publisher.publish("member.registered", member(i))
    # While work is in flight: three SIGKILLs, one broker restart, one database restart
    actions = ["kill"] * KILLS + ["rabbitmq", "postgres"]
    rng.shuffle(actions)
    for action in actions:
        time.sleep(rng.uniform(0.5, 2.5))
        print(f"{time.strftime('%X')} chaos: {action} ({len(fake_provider.calls())} calls so far)")
        if action == "kill":
            senders[-1].kill()
            senders.append(stack.start("sender", RETRY_SWEEP_SECONDS=2))
        elif action == "rabbitmq":
            restart_rabbitmq()  # the consumers keep running; they reconnect by themselves
        else:
            restart_postgres()

    def finished() -> bool:
        rows = messages(sessions)
        return len(rows) == EVENTS and all(m.status in ("sent", "dead") for m in rows)

    wait_until(finished, 300, "every message to be sent or dead", interval=0.5)
    rows = messages(sessions)
    assert len({(m.event_id, m.template) for m in rows}) == EVENTS
    ok_calls = Counter(c["to"] for c in fake_provider.calls() if c["outcome"] == "ok")
    sent = [m for m in rows if m.status == "sent"]
    duplicates = sum(n - 1 for n in ok_calls.values() if n > 1)
    resends = sum(p.log().count("died mid-call") for p in senders)
    print(f"{len(sent)} sent, {len(rows) - len(sent)} dead, {len(fake_provider.calls())} provider calls, "
          f"{duplicates} duplicate deliveries, {resends} ambiguous resends")
    assert all(ok_calls[m.recipient.lstrip("+")] >= 1 for m in sent)
    assert duplicates <= resends <= KILLS

