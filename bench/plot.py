"""latest.png: the gap distribution (ours vs Celery and Dramatiq) and the ingest rate over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(results: dict[str, Any], path: Path) -> None:
    scenarios = results["scenarios"]
    fig, (gaps_ax, rate_ax) = plt.subplots(1, 2, figsize=(14, 5.5))
    _gaps(gaps_ax, scenarios)
    _rates(rate_ax, scenarios)
    m = results["machine"]
    fig.suptitle(f"wanotify benchmarks{' (quick)' if results.get('quick') else ''} — {m['cpu_model']}, "
                 f"{m['logical_cores']} cores, RabbitMQ {m['rabbitmq']}, PostgreSQL {m['postgresql'].split()[0]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _gaps(ax: Any, scenarios: dict[str, Any]) -> None:
    pacing = scenarios.get("pacing", {}).get("series", {})
    celery = scenarios.get("celery_peer", {}).get("series", {})
    dramatiq = scenarios.get("dramatiq_peer", {}).get("series", {})
    gap_ms = 1000 * scenarios.get("pacing", {}).get("metrics", {}).get("fast", {}).get("gap_s", 0.05)
    sets = [("wanotify sender", pacing.get("fast_gaps_s"), "tab:blue"),
            ("Celery rate_limit, 2 workers", celery.get("workers_2_gaps_s"), "tab:red"),
            ("Celery rate_limit, 1 worker", celery.get("workers_1_gaps_s"), "tab:orange"),
            ("Dramatiq BucketRateLimiter, 2 workers", dramatiq.get("bucket_gaps_s"), "tab:olive"),
            ("Dramatiq ConcurrentRateLimiter as a mutex, 2 workers", dramatiq.get("mutex_gaps_s"), "tab:cyan")]
    bins = [i * 0.5 for i in range(0, 181)]  # 0-90 ms in 0.5 ms steps
    for label, values, colour in sets:
        if values:
            ax.hist([min(v * 1000, 89.9) for v in values], bins=bins, alpha=0.6, label=f"{label} (n={len(values)})",
                    color=colour)
    ax.axvline(gap_ms, color="black", linestyle="--", linewidth=1, label=f"configured gap {gap_ms:g} ms")
    ax.set_title("Gap between consecutive provider calls (arrival, start to start)")
    ax.set_xlabel("gap (ms; longer gaps, e.g. Celery's 1 s stalls, piled up at 90); left of the dashed line = too early")
    ax.set_ylabel("calls")
    ax.legend(fontsize=8)


def _rates(ax: Any, scenarios: dict[str, Any]) -> None:
    for name, colour in (("ingest", "tab:green"), ("backlog", "tab:purple")):
        rate = scenarios.get(name, {}).get("series", {}).get("rate")
        if rate:
            ax.plot([t for t, _ in rate], [r for _, r in rate], color=colour, marker=".", label=f"{name}: events/s")
    two = scenarios.get("ingest", {}).get("series", {}).get("rate_processes_2")
    if two:
        ax.plot([t for t, _ in two], [r for _, r in two], color="tab:olive", marker=".",
                label="ingest, run notifier --processes 2: events/s")
    ingest = scenarios.get("ingest", {}).get("metrics", {})
    publisher_end = ingest.get("publisher_seconds")
    if publisher_end:
        ax.axvline(publisher_end, color="tab:green", linestyle=":", linewidth=1, label="ingest: publisher done")
    ceiling = scenarios.get("broker_ceiling", {}).get("metrics", {}).get("ceiling_msgs_per_s") or \
        ingest.get("broker_ceiling_msgs_per_s")
    if ceiling:
        ax.axhline(ceiling, color="grey", linestyle="--", linewidth=1, label=f"broker ceiling {ceiling:.0f}/s")
    pipe = scenarios.get("broker_ceiling", {}).get("metrics", {}).get("pipe_msgs_per_s") or \
        ingest.get("pipe_ceiling_msgs_per_s")
    if pipe:
        ax.axhline(0.8 * pipe, color="grey", linestyle=":", linewidth=1, label=f"80 % of consume-and-publish ({pipe:.0f}/s)")
    ax.axhline(3000, color="black", linestyle="--", linewidth=1, label="goal 3,000/s")
    ax.set_title("Ingest: events rendered, logged and confirmed on the send queue (1 notifier)")
    ax.set_xlabel("seconds since the burst began")
    ax.set_ylabel("events/s (1 s samples)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
