"""What status and the metrics make of the per-sender figures: queue rows, text lines, gauges."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from wanotify.ops.admin.sender_status import duration, render_senders
from wanotify.shared.db.models import SenderState
from wanotify.shared.monitoring import QueueStats
from wanotify.shared.sender_metrics import SenderMetrics
from wanotify.shared.sender_report import Daily, Held, SenderReport, _state_of, load_of, queue_rows
from wanotify.shared.senders import SenderConfig
from wanotify.shared.topology import Topology

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def report(name: str = "otp", **changes) -> SenderReport:  # type: ignore[no-untyped-def]
    values = dict(name=name, provider="meta", state="active", paused_until=None, pause_reason=None, gap_seconds=10.0,
                  until_resumed=False, gap_max_seconds=None, lease_holder="p1", lease_process="host:42", consumers=1,
                  ready={"high": 0, "normal": 3, "low": 7}, waiting=10, waiting_recipients=8,
                  daily=Daily(used=2, limit=250, reserve=10, eta_seconds=None))
    values.update(changes)
    return SenderReport(**values)  # type: ignore[arg-type]


# --- queue rows ------------------------------------------------------------------------------------

def test_a_senders_three_priority_queues_are_one_row_under_its_contract_name():
    topology = Topology("ns")
    stats = {q: QueueStats(q, n, c) for q, n, c in [
        ("ns.notifier", 4, 1), ("ns.send.high", 1, 1), ("ns.send.normal", 2, 1), ("ns.send.low", 3, 1),
        ("ns.send.otp.high", 5, 0), ("ns.send.otp.normal", 0, 0), ("ns.send.otp.low", 0, 0)]}
    rows = queue_rows(topology, [SenderConfig("otp", "meta")], stats)
    by_name = {r["name"]: r for r in rows}
    assert by_name["ns.send"] == {"name": "ns.send", "ready": 6, "consumers": 1}
    assert by_name["ns.send.otp"] == {"name": "ns.send.otp", "ready": 5, "consumers": 0}
    assert by_name["ns.notifier"]["ready"] == 4
    assert not any(name.endswith((".high", ".normal", ".low")) for name in by_name)


def test_queues_not_declared_yet_show_as_absent():
    rows = queue_rows(Topology("ns"), [], {})
    assert rows and all(r["ready"] is None and r["consumers"] is None for r in rows)


# --- text lines ------------------------------------------------------------------------------------

def test_a_full_paused_sender_without_a_consumer_says_so_with_its_held_messages():
    full = report(state="paused", paused_until=NOW + timedelta(hours=1), pause_reason="131048 spam rate limit",
                  consumers=0, lease_holder=None, lease_process=None,
                  daily=Daily(used=250, limit=250, reserve=10, eta_seconds=1800.0),
                  held=[Held("daily_limit", 4, NOW + timedelta(minutes=30)),
                        Held("recipient_interval", 1, NOW + timedelta(seconds=5))])
    text = "\n".join(render_senders([full.as_dict()]))
    assert "otp" in text and "paused" in text and "0/3/7" in text
    assert "250 of 250, FULL, room in 30 min" in text
    assert "no process, not consuming while paused" in text
    assert "paused until 2026-05-01 13:00:00 UTC: 131048 spam rate limit" in text
    assert "held for daily_limit: 4, next due 12:30:00" in text
    assert "held for recipient_interval: 1, next due 12:00:05" in text


def test_an_active_sender_shows_its_jittered_gap_usage_and_lease_holder():
    line = render_senders([report(gap_seconds=30.0, gap_max_seconds=60.0, daily=Daily(3, None, 0, None)).as_dict()])[-1]
    assert "30-60 s" in line and "3 (no limit)" in line and "host:42, consumer attached" in line


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (5, 300, 9000)] == ["5 s", "5 min", "2.5 h"]
    assert duration(None).startswith("never")


# --- the capacity model's view ---------------------------------------------------------------------

def test_a_paused_sender_starts_after_its_pause_and_a_disabled_one_never():
    paused = load_of(report(state="paused", paused_until=NOW + timedelta(seconds=90)), NOW)
    assert paused.paused_for == 90 and paused.limit == 240 and paused.used == 2  # 10 of 250 kept for high
    assert math.isinf(load_of(report(state="disabled"), NOW).paused_for)
    assert load_of(report(gap_seconds=30.0, gap_max_seconds=60.0), NOW).gap == 45


# --- gauges ----------------------------------------------------------------------------------------

def test_the_gauges_follow_the_reports_and_a_removed_sender_loses_its_series():
    registry = CollectorRegistry()
    metrics = SenderMetrics(registry)
    full = report(daily=Daily(250, 250, 10, 60.0), held=[Held("daily_limit", 4, NOW)])
    metrics.update([full, report("promo", state="paused", consumers=0)])

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("wanotify_sender_daily_used", sender="otp") == 250
    assert value("wanotify_sender_daily_limit", sender="otp") == 250
    assert value("wanotify_sender_daily_limit_reached", sender="otp") == 1
    assert value("wanotify_sender_held_messages", sender="otp", reason="daily_limit") == 4
    assert value("wanotify_sender_queue_ready", sender="otp", priority="low") == 7
    assert value("wanotify_sender_state", sender="promo", state="paused") == 1
    assert value("wanotify_sender_state", sender="promo", state="active") == 0
    assert value("wanotify_sender_consumer_attached", sender="promo") == 0
    metrics.update([report(daily=Daily(3, None, 0, None))])
    assert value("wanotify_sender_state", sender="promo", state="paused") is None
    assert value("wanotify_sender_daily_limit", sender="otp") is None  # no limit: no series
    assert value("wanotify_sender_held_messages", sender="otp", reason="daily_limit") is None
    assert value("wanotify_sender_daily_limit_reached", sender="otp") == 0


@pytest.mark.parametrize(("pause_for", "shown"), [
    (timedelta(hours=2), "paused until 2026-05-01 14:00:00 UTC: paused by hand by cli:ana"),
    (timedelta(days=36500), "paused until resumed: paused by hand by cli:ana")])
def test_a_pause_by_hand_with_an_end_shows_its_end(pause_for: timedelta, shown: str) -> None:
    state = SenderState(namespace="n", sender="otp", paused_until=NOW + pause_for, pause_reason="paused by hand by cli:ana")
    paused = report(**_state_of(SenderConfig(name="otp", provider="meta"), state, NOW))
    assert shown in "\n".join(render_senders([paused.as_dict()]))
