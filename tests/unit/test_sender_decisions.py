"""The sender's decisions with fakes: lease, gap draws, settlements, failure policy. No broker, no database."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

from tests.unit.sender_fakes import FakeDelivery, FakeLeaseStore, FakePublisher
from wanotify.consumers.sender.lease import may_hold
from wanotify.consumers.sender.pacing import GapDraw, Pacer
from wanotify.consumers.sender.policy import Dead, PairRate, Pause, bounded, decide
from wanotify.consumers.sender.settle import Ack, Defer, Keep, Park, Requeue, RetryLater, Settler
from wanotify.shared.errors import PermanentError, QualityLimitError, TransientError
from wanotify.shared.messages import ATTEMPT_HEADER, REASON_HEADER, SendCommand
from wanotify.shared.metrics import Metrics
from wanotify.shared.priority import Priority
from wanotify.shared.runtime import RuntimeSettings
from wanotify.shared.senders import SenderConfig

NOW = datetime(2026, 1, 1, tzinfo=UTC)
COMMAND = SendCommand(7, 2, Priority.NORMAL, "e", "welcome", sender="b")
RUNTIME = RuntimeSettings(auto_retry_enabled=True, max_retry_attempts=3, retry_delay_minutes=1.0,
                          message_delay_seconds=10.0)


# --- the lease ------------------------------------------------------------------------------

def test_a_lease_is_free_when_unheld_expired_or_ours_and_taken_otherwise():
    assert may_hold(None, None, "me", NOW)
    assert may_hold("me", NOW + timedelta(seconds=3), "me", NOW)
    assert may_hold("other", NOW - timedelta(seconds=0.1), "me", NOW)
    assert not may_hold("other", NOW + timedelta(seconds=3), "me", NOW)


def test_of_two_processes_only_the_first_holds_a_number_until_its_lease_lapses():
    store = FakeLeaseStore(seconds=5)
    assert all(state.held for state in store.renew(["a", "b"], "p1").values())
    assert {s: st.held for s, st in store.renew(["a", "b", "c"], "p2").items()} == {"a": False, "b": False, "c": True}
    store.now += timedelta(seconds=4)  # p1 renews within its lease: still p1's
    assert store.renew(["a"], "p1")["a"].held
    store.now += timedelta(seconds=5.1)  # p1 went silent past its lease: p2 takes it
    assert store.renew(["a"], "p2")["a"].held and not store.renew(["a"], "p1")["a"].held
    store.release(["a"], "p2")  # a clean stop hands it over at once
    assert store.renew(["a"], "p1")["a"].held


def test_a_lane_stops_counting_on_its_lease_when_renewals_stop_working():
    from wanotify.consumers.sender.lane import Lane
    from wanotify.consumers.sender.lease import LEASE_SECONDS, LaneState

    lane = Lane(SenderConfig("a", "fake"), _NamedProvider(), _shared())
    lane.on_lease(LaneState(True, now=NOW), time.monotonic())
    assert lane._leased()
    lane.on_lease(LaneState(True, now=NOW), time.monotonic() - LEASE_SECONDS)  # the last good renewal is too old
    assert not lane._leased()
    lane.on_lease(LaneState(False, now=NOW), time.monotonic())
    assert not lane._leased()


def test_a_renewal_tells_the_lane_its_pause():
    from wanotify.consumers.sender.lane import Lane
    from wanotify.consumers.sender.lease import LaneState

    lane = Lane(SenderConfig("a", "fake"), _NamedProvider(), _shared())
    lane.on_lease(LaneState(True, NOW + timedelta(seconds=30), "quality", NOW), time.monotonic())
    assert 29 < lane._pause_until - time.monotonic() <= 30
    lane.on_lease(LaneState(True, None, None, NOW), time.monotonic())
    assert lane._pause_until <= time.monotonic()


class _NamedProvider:
    name = "fake"

    def send(self, message):  # type: ignore[no-untyped-def]
        raise AssertionError("no call in these tests")

    def close(self) -> None:
        pass


def _shared():  # type: ignore[no-untyped-def]
    from collections import Counter

    from wanotify.consumers.sender.lane import Shared
    from wanotify.shared.config import Settings

    return Shared(Settings.from_env({}), Metrics(), None, "me", None, None, None, None,  # type: ignore[arg-type]
                  lambda: RUNTIME, asyncio.Event(), Counter())


# --- the gap: fixed, jittered per call, or the runtime one -----------------------------------

def test_a_sender_without_its_own_gap_follows_the_runtime_gap_as_it_changes():
    draw = GapDraw(SenderConfig("a", "fake").gap, jittered=False)
    assert draw.current(10.0) == 10.0 and draw.current(1.0) == 1.0


def test_a_jittered_gap_is_drawn_once_per_call_within_its_range():
    rng = random.Random(4)
    config = SenderConfig("a", "gateway", gap_min_seconds=30.0, gap_max_seconds=60.0)
    draw = GapDraw(lambda runtime: config.gap(runtime, rng), jittered=True)
    draws = []
    for _ in range(20):
        first = draw.current(10.0)
        assert draw.current(10.0) == first  # waiting does not redraw
        draws.append(first)
        draw.called()
    assert all(30.0 <= d <= 60.0 for d in draws) and len(set(draws)) == 20


def test_the_pacer_keeps_each_drawn_gap_from_the_previous_start():
    clock = [100.0]
    pacer = Pacer(clock=lambda: clock[0])
    pacer.mark_start()
    pacer.mark_end()
    assert pacer.remaining(30.0) > 29.9
    clock[0] += 31.0
    assert pacer.remaining(30.0) == 0.0 and pacer.remaining(45.0) > 13.9


# --- what a failed call leads to ----------------------------------------------------------

def test_a_pair_rate_error_defers_the_recipient_without_spending_a_retry():
    error = TransientError("HTTP 400 (#131056) pair rate limit hit", code="meta_131056")
    assert decide(error, retries_used=3, runtime=RUNTIME, backoff=1.0, quality_pause=3600) == PairRate()


def test_quality_and_account_codes_pause_the_sender_and_others_do_not():
    for error in (QualityLimitError("spam", code="meta_131048"), PermanentError("locked", code="meta_131031")):
        assert decide(error, 0, RUNTIME, 1.0, 3600) == Pause(3600)
    assert decide(PermanentError("bad number", code="meta_131026"), 0, RUNTIME, 1.0, 3600) == Dead("permanent")


def test_a_quality_pause_parks_the_message_once_it_caused_more_pauses_than_it_has_retries():
    pause = decide(QualityLimitError("spam", code="meta_131048"), 0, RUNTIME, 1.0, 3600)
    assert [bounded(pause, earlier, RUNTIME).park for earlier in range(5)] == [False, False, False, True, True]


def test_a_pause_is_counted_under_metas_code_from_a_fixed_set():
    from wanotify.consumers.sender.outcomes import Outcomes
    from wanotify.shared.config import Settings

    metrics = Metrics()
    outcomes = Outcomes(Settings.from_env({}), metrics, None)  # type: ignore[arg-type]
    for code in ("meta_131049", "meta_131031", "meta_999999", None):
        assert outcomes._settlement("b", Pause(3600), "spam", [], code) == Keep()
    counted = {code: metrics.registry.get_sample_value("wanotify_sender_pauses_total", {"code": code, "sender": "b"})
               for code in ("meta_131049", "meta_131031", "other", "quality")}
    # a code outside the quality and account set counts as "other": the label set stays small
    assert counted == {"meta_131049": 1, "meta_131031": 1, "other": 2, "quality": None}


# --- settling: one construct does every ack, nack and republish ----------------------------

def _apply(settlement, publisher: FakePublisher | None = None) -> tuple[FakeDelivery, FakePublisher, bool]:  # type: ignore[no-untyped-def]
    publisher = publisher or FakePublisher()
    delivery = FakeDelivery()
    settled = asyncio.run(Settler(publisher, "ns.send.dead", Metrics()).apply(delivery, COMMAND, settlement))
    return delivery, publisher, settled


def test_each_settlement_does_its_one_thing():
    delivery, publisher, settled = _apply(Ack())
    assert (delivery.settled, publisher.published, settled) == (["ack"], [], True)
    delivery, publisher, _ = _apply(Defer(6.0, "recipient_interval"))
    assert (delivery.settled, publisher.published) == (["ack"], [("defer", 2, 6.0)])  # same attempt: none spent
    delivery, publisher, _ = _apply(RetryLater(60.0))
    assert (delivery.settled, publisher.published) == (["ack"], [("retry", 3, 60.0)])  # the next attempt
    delivery, publisher, _ = _apply(Park("permanent", "bad number"))
    assert delivery.settled == ["ack"] and publisher.published[0][0] == "dead"
    assert (publisher.published[0][2][REASON_HEADER], publisher.published[0][2][ATTEMPT_HEADER]) == ("permanent", 2)
    delivery, publisher, _ = _apply(Requeue())
    assert (delivery.settled, publisher.published) == (["requeue"], [])
    delivery, publisher, settled = _apply(Keep())
    assert (delivery.settled, publisher.published, settled) == ([], [], False)


def test_a_deferral_that_cannot_be_published_is_requeued_not_lost():
    delivery, _, _ = _apply(Defer(6.0, "daily_limit"), FakePublisher(fail=True))
    assert delivery.settled == ["requeue"]


def test_a_retry_that_cannot_be_published_is_acked_for_the_sweep_which_reads_the_row():
    delivery, _, _ = _apply(RetryLater(60.0), FakePublisher(fail=True))
    assert delivery.settled == ["ack"]


def test_a_changed_sender_row_reaches_its_lane_from_the_next_call_on():
    from wanotify.consumers.sender.lane import Lane

    lane = Lane(SenderConfig("a", "fake", gap_min_seconds=1.0), _NamedProvider(), _shared())
    assert lane.gap.current(10.0) == 1.0
    lane.reconfigure(SenderConfig("a", "fake", gap_min_seconds=2.0, gap_max_seconds=3.0))
    assert 2.0 <= lane.gap.current(10.0) <= 3.0
    lane.reconfigure(SenderConfig("a", "fake"))
    assert lane.gap.current(10.0) == 10.0  # no gap of its own: the runtime gap


def test_a_successor_keeps_half_a_second_more_than_the_gap_after_another_processs_last_call():
    # The other process stored its planned start; killed mid-call, it may have started well after it.
    from wanotify.consumers.sender.store import _external_wait
    from wanotify.shared.db.models import SenderState

    now = datetime.now(UTC)
    state = SenderState(namespace="ns", sender="a", sender_id="gone", last_call_at=now - timedelta(seconds=0.2))
    assert abs(_external_wait(state, now, 1.0, "me") - (0.8 + 0.5)) < 1e-6
    assert _external_wait(state, now, 1.0, "gone") == 0.0  # its own calls: paced by its own clock
