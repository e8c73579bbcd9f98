"""Routing decisions without a broker or a database: pins, the least-loaded first contact, and
what parks an event that names a sender."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.unit.catalog import seeded_catalog
from wanotify.consumers.notifier import routing
from wanotify.consumers.notifier.planning import RuleSpec, plan_event
from wanotify.consumers.notifier.routing import Load, LoadCache, SenderNames, choose_new, route
from wanotify.shared.events import build_envelope
from wanotify.shared.priority import Priority

POOL = SenderNames(("a", "b", "c"), frozenset({"old"}), from_rows=True)
CATALOG = replace(seeded_catalog(), senders=POOL)
MEMBER = {"member_id": "M-1", "name": "Budi", "phone": "08114040707"}


def requested(**extra: object) -> bytes:
    data = {"phone": "08114040707", "template": "test_message", "variables": {"sent_at": "now"}} | extra
    return json.dumps(build_envelope("notification.requested", data)).encode()


def test_new_recipients_spread_evenly_over_the_senders_each_choice_counting_as_load():
    chosen = choose_new({f"+6281100000{i:02d}": 1 for i in range(30)}, POOL.active, Load())
    counts = {s: list(chosen.values()).count(s) for s in POOL.active}
    assert counts == {"a": 10, "b": 10, "c": 10}


def test_the_least_loaded_sender_has_the_fewest_waiting_messages_then_the_fewest_recipients_then_the_first_name():
    load = Load(waiting={"a": 5, "b": 2, "c": 2}, recipients={"a": 0, "b": 9, "c": 3})
    assert load.least_loaded(POOL.active) == "c"  # b and c tie on waiting; c has fewer recipients
    assert Load().least_loaded(("b", "a")) == "a"


def test_a_recipient_with_several_messages_weighs_as_much_as_its_messages():
    chosen = choose_new({"+1": 5, "+2": 1, "+3": 1}, ("a", "b"), Load())
    assert chosen == {"+1": "a", "+2": "b", "+3": "b"}  # after +1, a has 5 waiting, b has 1


def test_without_sender_rows_every_message_goes_to_default_without_reading_anything():
    # No session at all: with no sender rows the router must not touch the database.
    assert route(None, [("+1", None), ("+2", "default")], SenderNames()) == ["default", "default"]  # type: ignore[arg-type]


def test_an_event_pinning_an_unknown_sender_is_parked_saying_which_senders_exist():
    plan = plan_event(requested(sender="nobody"), CATALOG, "ID")
    assert plan.parked is not None and plan.parked.reason == "unknown_sender"
    assert "'nobody'" in plan.parked.detail and "a, b, c" in plan.parked.detail


def test_an_event_pinning_a_disabled_sender_is_parked():
    plan = plan_event(requested(sender="old"), CATALOG, "ID")
    assert plan.parked is not None and plan.parked.reason == "sender_disabled" and "'old' is disabled" in plan.parked.detail


def test_an_event_pinning_an_active_sender_carries_the_pin_and_its_broadcast():
    [message] = plan_event(requested(sender="b", broadcast_id=42), CATALOG, "ID").messages
    assert (message.sender, message.broadcast_id) == ("b", 42)


@pytest.mark.parametrize("bad", [{"sender": "Not A Name"}, {"broadcast_id": "7"}, {"broadcast_id": 0}])
def test_a_malformed_sender_or_broadcast_id_is_invalid_data(bad: dict[str, object]):
    plan = plan_event(requested(**bad), CATALOG, "ID")
    assert plan.parked is not None and plan.parked.reason == "invalid_data"


def test_a_rule_may_pin_a_sender():
    rules = CATALOG.rules | {"member.registered": [RuleSpec("welcome_new_member", Priority.NORMAL, sender="c")]}
    [message] = plan_event(json.dumps(build_envelope("member.registered", MEMBER)).encode(),
                           replace(CATALOG, rules=rules), "ID").messages
    assert message.sender == "c"


def test_with_every_sender_disabled_events_are_parked_with_what_to_do():
    catalog = replace(CATALOG, senders=SenderNames((), frozenset({"a"}), from_rows=True))
    plan = plan_event(json.dumps(build_envelope("member.registered", MEMBER)).encode(), catalog, "ID")
    assert plan.parked is not None and plan.parked.reason == "sender_disabled"
    assert "senders add" in plan.parked.detail


def test_without_sender_rows_only_default_may_be_pinned():
    assert plan_event(requested(sender="default"), seeded_catalog(), "ID").messages[0].sender == "default"
    assert plan_event(requested(sender="sales"), seeded_catalog(), "ID").parked.reason == "unknown_sender"  # type: ignore[union-attr]


def test_the_notifier_reads_the_load_once_per_interval_and_adds_its_own_choices_meanwhile(monkeypatch):
    reads: list[tuple[str, ...]] = []

    def read_load(_session, active):  # type: ignore[no-untyped-def]
        reads.append(tuple(active))
        return Load(waiting={"a": 3})
    monkeypatch.setattr(routing, "read_load", read_load)
    now = [100.0]
    cache = LoadCache(ttl=2.0, clock=lambda: now[0])
    first = cache.get(None, ("a", "b"))  # type: ignore[arg-type]
    choose_new({"+1": 4}, ("a", "b"), first)  # goes to b, which now has 4 waiting
    assert cache.get(None, ("a", "b")).least_loaded(("a", "b")) == "a" and len(reads) == 1  # type: ignore[arg-type]
    cache.get(None, ("a", "c"))  # type: ignore[arg-type]  # another set of senders: read again
    now[0] += 2.0
    cache.get(None, ("a", "c"))  # type: ignore[arg-type]  # the interval passed: read again
    assert reads == [("a", "b"), ("a", "c"), ("a", "c")]
