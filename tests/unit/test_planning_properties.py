"""Every bad input is parked for the reason that describes it; nothing escapes as an
exception, and nothing is blamed on ``internal_error`` (which means a bug in the planner)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.unit.catalog import seeded_catalog
from tests.unit.malformed import first_failure, labelled_events, malformed_events
from wanotify.consumers.notifier.planning import plan_event

CATALOG = seeded_catalog()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_events)
def test_each_kind_of_bad_input_is_parked_for_its_own_reason_and_valid_events_become_messages(case):
    body, expected = case
    plan = plan_event(body, CATALOG, "ID")
    if expected == "valid":
        assert plan.parked is None and plan.messages
    else:
        assert plan.parked is not None, "a bad event must be parked"
        assert (plan.parked.reason, plan.messages) == (expected, []), plan.parked.detail
        assert plan.parked.detail


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_events)
def test_random_bytes_and_json_are_parked_for_the_first_check_they_fail(body):
    plan = plan_event(body, CATALOG, "ID")
    assert plan.parked is not None and not plan.messages
    assert plan.parked.reason == first_failure(body), plan.parked.detail
