"""The priority order on quorum queues (no x-max-priority there): the same holding of heads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pool import JITTER, add_numbers, assert_high_went_next, high_during_a_gap, label, min_gaps, numbers_cleanup
from tests.support.processes import wait_until
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.topology import Topology

__all__ = ["numbers_cleanup"]  # the fixture, used by name


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(queue_type="quorum")


@pytest.fixture
def quorum_publisher(settings: Settings) -> Iterator[EventPublisher]:
    with EventPublisher(settings.amqp_url, settings.namespace, source="tests",
                        topology=Topology.of(settings)) as publisher:
        yield publisher


def test_on_quorum_queues_a_high_message_arriving_during_the_gap_goes_next(
        stack, quorum_publisher, fake_provider, sessions, numbers_cleanup):
    # Given a backlog of low and normal messages on one number, its queues quorum queues
    env = add_numbers(sessions, fake_provider.url, ["a"], 1.0) | {"QUEUE_TYPE": "quorum"}
    stack.start("notifier", QUEUE_TYPE="quorum")
    sender = stack.start("sender", **env)
    # When a high-priority message arrives during a gap
    calls = high_during_a_gap(quorum_publisher, fake_provider, "a")
    order = [label(c) for c in calls]
    print("order on quorum queues:", order)
    # Then it goes next, and the rest by priority, first in first out within one
    assert_high_went_next(order)
    assert min(min_gaps(calls).values()) >= 1.0 - JITTER
    wait_until(lambda: sender.log().count(" sent ") == 7, 10, "seven sends recorded")
