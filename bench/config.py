"""Where the suite connects, and how big each scenario is in a full and in a quick run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/wanotify_bench")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "bench" / "results"


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does."""

    broker_messages: int = 50_000
    broker_in_flight: int = 300
    ingest_events: int = 100_000  # per part: one notifier process, then two
    pacing_fast_messages: int = 200
    pacing_fast_gap: float = 0.05
    pacing_slow_messages: int = 12
    pacing_slow_gap: float = 10.0
    sender_rate_messages: int = 2_000
    idle_events: int = 50
    idle_gap: float = 0.2
    idle_pause: float = 0.45
    backlog_messages: int = 100_000
    backlog_high: int = 5
    backlog_drain_seconds: float = 6.0
    celery_tasks: int = 200
    celery_rate: str = "20/s"
    celery_workers: int = 2
    api_events: int = 20_000
    pool_messages_per_number: int = 60
    million_messages: int = 1_000_000
    million_gap: float = 0.5
    million_live_high: int = 3
    peer_restart_gap: float = 4.0
    dramatiq_tasks: int = 100  # its limiters retry a refused task after a back-off: ~3 calls/s, not 20


FULL = Sizes()
QUICK = Sizes(
    broker_messages=5_000,
    ingest_events=10_000,
    pacing_fast_messages=40,
    pacing_slow_messages=2,
    sender_rate_messages=300,
    idle_events=10,
    backlog_messages=5_000,
    backlog_high=3,
    backlog_drain_seconds=3.0,
    celery_tasks=60,
    api_events=2_000,
    pool_messages_per_number=15,
    million_messages=20_000,
    million_live_high=2,
    dramatiq_tasks=40,
)
