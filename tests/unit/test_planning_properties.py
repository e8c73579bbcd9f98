"""No input, however malformed, escapes the planner as an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from consumers.notifier.planning import plan_event
from shared.events import PARK_REASONS
from tests.unit.catalog import seeded_catalog
from tests.unit.malformed import malformed_events

CATALOG = seeded_catalog()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_events)
def test_every_input_becomes_messages_or_a_parked_event_with_a_known_reason(body):
    plan = plan_event(body, CATALOG, "ID")
    if plan.parked is None:
        assert plan.messages, "an event that is not parked must yield messages"
    else:
        assert plan.parked.reason in PARK_REASONS
        assert plan.parked.detail
