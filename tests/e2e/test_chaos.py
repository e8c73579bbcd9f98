"""Chaos: sender and notifier kills, a broker restart and a database restart while 300 events
are in flight (the scenario and its account are in ``tests/chaos.py``; run many seeds with
``python -m tests.chaos --runs N``).

Every event must end as exactly one row, sent or dead; every dead row must be explained by
the injected provider failures or by a sender killed during its call (parked "outcome
unknown", at most one per kill that landed mid-call); no recipient is called twice.
"""

from __future__ import annotations

import random

import pytest

from tests.chaos import DRAIN_SECONDS, run_once

# These stop or restart the machine's RabbitMQ or PostgreSQL: never run beside other tests.
pytestmark = pytest.mark.outage


@pytest.mark.slow
@pytest.mark.timeout(DRAIN_SECONDS + 180)
def test_every_event_ends_as_one_sent_or_dead_row_through_kills_and_restarts(amqp_url, database_url, sessions):
    seed = random.randrange(1_000_000)
    result = run_once(amqp_url, database_url, seed, events=300)
    print(result)
    assert result.problems() == [], f"seed {seed}: {result}"
    assert result.sent + sum(result.dead.values()) == 300
