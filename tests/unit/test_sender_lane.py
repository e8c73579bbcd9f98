"""A lane's handling of one copy, with a fake claim store and a scripted provider: what each
claim leads to. No broker, no database."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from tests.unit.sender_fakes import FakeClaimStore
from wanotify.consumers.providers import OutgoingMessage, SendResult
from wanotify.consumers.sender import store
from wanotify.consumers.sender.choice import Refusal
from wanotify.consumers.sender.lane import Lane, Shared
from wanotify.consumers.sender.outcomes import Outcomes
from wanotify.consumers.sender.settle import Ack, Defer, Keep, Park
from wanotify.shared.config import Settings
from wanotify.shared.db.models import Status
from wanotify.shared.messages import SendCommand
from wanotify.shared.metrics import Metrics
from wanotify.shared.priority import Priority
from wanotify.shared.runtime import RuntimeSettings
from wanotify.shared.senders import SenderConfig

RUNTIME = RuntimeSettings(auto_retry_enabled=True, max_retry_attempts=3, retry_delay_minutes=1.0,
                          message_delay_seconds=10.0)
COMMAND = SendCommand(7, 1, Priority.NORMAL, "e", "welcome", sender="a")


class RecordingProvider:
    name = "meta"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.sent.append(message)
        return SendResult("wamid.1")

    def close(self) -> None:
        pass


def _lane(claims: FakeClaimStore, config: SenderConfig | None = None) -> tuple[Lane, RecordingProvider]:
    settings, metrics = Settings.from_env({}), Metrics()
    shared = Shared(settings, metrics, None, "me", None, None, Outcomes(settings, metrics, None),  # type: ignore[arg-type]
                    claims, lambda: RUNTIME, asyncio.Event(), Counter())
    provider = RecordingProvider()
    return Lane(config or SenderConfig("a", "meta", gap_min_seconds=0.5), provider, shared), provider


def _handle(lane: Lane):  # type: ignore[no-untyped-def]
    return asyncio.run(lane._handle(COMMAND))


def test_a_message_the_budget_holds_back_is_deferred_without_a_call():
    lane, provider = _lane(FakeClaimStore(store.Deferred(6.0, "recipient_interval")))
    assert _handle(lane) == Defer(6.0, "recipient_interval") and provider.sent == []


def test_a_paused_number_keeps_its_delivery_held_and_sleeps_until_the_pause_ends():
    lane, provider = _lane(FakeClaimStore(store.Wait(30.0, paused=True, why="paused")))
    assert _handle(lane) == Keep() and provider.sent == []
    assert 29 < lane._pause_until - time.monotonic() <= 30


def test_a_claim_refused_for_want_of_the_lease_keeps_the_delivery_and_gives_the_lease_up():
    lane, _ = _lane(FakeClaimStore(store.Wait(1.0, why="lease")))
    lane._lease_until = time.monotonic() + 5
    assert _handle(lane) == Keep() and not lane._leased()


def test_another_processs_gap_holds_the_lane_back_until_it_ends():
    lane, _ = _lane(FakeClaimStore(store.Wait(2.0)))
    assert _handle(lane) == Keep() and 1.9 < lane._not_before - time.monotonic() <= 2.0


def test_a_stale_copy_is_acked_and_a_refused_message_parked_without_a_call():
    lane, provider = _lane(FakeClaimStore(store.Stale("attempt 1 of a sent message"),
                                          store.Refused(Refusal(Status.DEAD, "no_approved_template", "map one"))))
    assert _handle(lane) == Ack()
    assert _handle(lane) == Park("no_approved_template", "map one")
    assert provider.sent == []


def test_a_claimed_slot_is_called_once_recorded_as_sent_and_acked_on_the_lanes_own_gap():
    go = store.Go("+628114040707", "Halo", "welcome", 0.0, RUNTIME, attempt_id=1, ambiguous=False, gap=0.5)
    claims = FakeClaimStore(go)
    lane, provider = _lane(claims)
    assert _handle(lane) == Ack()
    assert [m.recipient for m in provider.sent] == ["+628114040707"]
    assert claims.asked == [("a", 0.5)]  # the number's own gap, not the runtime one
    assert claims.sent == [(7, "wamid.1")] and claims.started == ["a"]
    # and the lane's pacer now keeps that gap before its next call
    assert lane.pacer.remaining(0.5) > 0.4


def test_without_a_gap_of_its_own_a_number_claims_with_the_runtime_gap():
    claims = FakeClaimStore(store.Wait(1.0))
    lane, _ = _lane(claims, SenderConfig("a", "meta"))
    _handle(lane)
    assert claims.asked == [("a", RUNTIME.gap_seconds)]


def test_a_head_held_past_the_broker_timeout_margin_is_handed_back_and_a_fresh_one_kept():
    from tests.unit.sender_fakes import FakeDelivery, FakePublisher
    from wanotify.consumers.sender.hold import MAX_AGE_SECONDS
    from wanotify.consumers.sender.settle import Settler

    lane, _ = _lane(FakeClaimStore())
    lane.shared.settler = Settler(FakePublisher(), "ns.send.dead", lane.shared.metrics)
    old, fresh = FakeDelivery(message_id="1.1"), FakeDelivery(message_id="2.1")
    lane.hold.put(Priority.LOW, old, time.monotonic() - MAX_AGE_SECONDS - 1)  # type: ignore[arg-type]
    lane.hold.put(Priority.HIGH, fresh, time.monotonic())  # type: ignore[arg-type]
    asyncio.run(lane._hand_back_old())
    assert (old.settled, fresh.settled) == (["requeue"], [])
    assert [h.item for h in lane.hold] == [fresh]


def test_the_paused_gauge_is_per_number():
    from wanotify.consumers.sender.lease import LaneState

    lane, _ = _lane(FakeClaimStore())
    now = datetime.now(UTC)
    lane.on_lease(LaneState(True, now + timedelta(seconds=60), "quality", now), time.monotonic())
    other, _ = _lane(FakeClaimStore(), SenderConfig("b", "meta"))
    other.shared = lane.shared
    other.on_lease(LaneState(True, None, None, now), time.monotonic())
    registry = lane.shared.metrics.registry
    assert registry.get_sample_value("wanotify_sender_paused", {"sender": "a", "kind": "quality"}) == 1
    assert registry.get_sample_value("wanotify_sender_paused", {"sender": "b", "kind": "quality"}) == 0


def test_the_paused_gauge_tells_a_pause_by_hand_from_a_quality_pause():
    from wanotify.consumers.sender.lease import LaneState

    lane, _ = _lane(FakeClaimStore())
    now = datetime.now(UTC)
    lane.on_lease(LaneState(True, now + timedelta(seconds=600), "paused by hand by ops: migration", now),
                  time.monotonic())
    registry = lane.shared.metrics.registry
    assert registry.get_sample_value("wanotify_sender_paused", {"sender": "a", "kind": "by_hand"}) == 1
    assert registry.get_sample_value("wanotify_sender_paused", {"sender": "a", "kind": "quality"}) == 0
    # a claim that meets the pause says its kind too
    lane.shared.claims = FakeClaimStore(store.Wait(30.0, paused=True, why="paused", pause_reason="HTTP 400 (#131048)"))
    _handle(lane)
    assert registry.get_sample_value("wanotify_sender_paused", {"sender": "a", "kind": "quality"}) == 1
    assert registry.get_sample_value("wanotify_sender_paused", {"sender": "a", "kind": "by_hand"}) == 0


class SlowClaimStore(FakeClaimStore):
    def __init__(self, seconds: float, *claims: store.Claim) -> None:
        super().__init__(*claims)
        self.seconds = seconds

    def claim(self, *args, **kwargs) -> store.Claim:  # type: ignore[no-untyped-def]
        time.sleep(self.seconds)
        return super().claim(*args, **kwargs)


@pytest.mark.parametrize("claim_seconds", [0.02, 0.08])  # 80 ms: a process with many busy numbers
def test_the_lane_claims_as_far_ahead_of_its_slot_as_preparing_a_call_takes(claim_seconds: float) -> None:
    from wanotify.consumers.sender.claims import CLAIM_LEAD_SECONDS
    from wanotify.consumers.sender.schedule import MAX_LEAD_SECONDS

    go = store.Go("+628114040707", "Halo", "welcome", 0.0, RUNTIME, attempt_id=1, ambiguous=False, gap=0.0)
    lane, provider = _lane(SlowClaimStore(claim_seconds, *[go] * 12), SenderConfig("a", "meta", gap_min_seconds=0.0))
    assert lane._lead() < 0.02  # before any call: the default lead
    for _ in range(12):
        lane._chosen_at = time.monotonic()  # as the schedule does when it picks a head
        _handle(lane)
    assert len(provider.sent) == 12
    # the lane claims earlier than its claims take, and never earlier than a claim accepts
    assert claim_seconds < lane._lead() <= MAX_LEAD_SECONDS < CLAIM_LEAD_SECONDS


class OutageFirst(FakeClaimStore):
    """Its first claim fails as if the database had gone away."""

    def __init__(self, *claims: store.Claim) -> None:
        super().__init__(*claims)
        self.tries = 0

    def claim(self, *args, **kwargs) -> store.Claim:  # type: ignore[no-untyped-def]
        self.tries += 1
        if self.tries == 1:
            raise OperationalError("SELECT …", {}, ConnectionError("server closed the connection unexpectedly"))
        return super().claim(*args, **kwargs)


def test_a_claim_that_met_a_database_outage_is_tried_again_and_the_call_made_once():
    go = store.Go("+628114040707", "Halo", "welcome", 0.0, RUNTIME, attempt_id=1, ambiguous=False, gap=0.5)
    claims = OutageFirst(go)
    lane, provider = _lane(claims)
    assert _handle(lane) == Ack()
    assert claims.tries == 2 and len(provider.sent) == 1


def test_a_stopped_lane_no_longer_says_its_number_is_paused():
    from wanotify.consumers.sender.lease import LaneState

    # Given a lane that saw its number paused, then the sender disabled (its lane stopped)
    lane, _ = _lane(FakeClaimStore())
    now = datetime.now(UTC)
    lane.on_lease(LaneState(True, now + timedelta(seconds=600), "paused by hand", now), time.monotonic())
    asyncio.run(lane.stop())
    # Then the process exports no pause for it: it no longer sends for that number
    registry = lane.shared.metrics.registry
    for kind in ("quality", "by_hand"):
        assert registry.get_sample_value("wanotify_sender_paused", {"sender": "a", "kind": kind}) is None
