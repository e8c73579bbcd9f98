"""How a broadcast's ETA sees each sender: no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wanotify.ops.admin.broadcast_eta import sender_load
from wanotify.shared.capacity import SenderLoad
from wanotify.shared.senders import SenderConfig

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_a_sender_without_its_own_gap_takes_the_runtime_gap_and_a_jittered_one_its_mean():
    assert sender_load(SenderConfig("a", "fake"), 10.0, NOW, 0, None, urgent=False) == SenderLoad("a", 10.0)
    jittered = SenderConfig("b", "fake", gap_min_seconds=30, gap_max_seconds=60)
    assert sender_load(jittered, 10.0, NOW, 0, None, urgent=False).gap == 45


def test_a_broadcast_may_not_use_the_reserve_kept_for_high_priority():
    sender = SenderConfig("a", "fake", daily_limit=250, daily_reserve=50)
    assert sender_load(sender, 1.0, NOW, 20, None, urgent=False) == SenderLoad("a", 1.0, 200, 20)
    assert sender_load(sender, 1.0, NOW, 20, None, urgent=True).limit == 250


def test_a_new_numbers_warmup_step_is_its_limit():
    sender = SenderConfig("a", "fake", warmup=(50, 100), warmup_started_at=NOW - timedelta(days=1, hours=1))
    assert sender_load(sender, 1.0, NOW, 0, None, urgent=False).limit == 100


def test_a_paused_sender_starts_when_its_pause_ends():
    load = sender_load(SenderConfig("a", "fake"), 1.0, NOW, 0, NOW + timedelta(minutes=5), urgent=False)
    assert load.paused_for == 300
