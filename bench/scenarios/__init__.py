"""The scenarios, in the order a full run takes them. Each module has ``run(ctx) -> dict``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import Sizes

ORDER = ("broker_ceiling", "ingest", "pacing", "sender_rate", "pool_scale", "idle_latency", "backlog", "million",
         "celery_peer", "dramatiq_peer", "peer_restart", "webhook_abuse", "console_queries", "api_publish",
         "cluster_failover", "cluster_cost")


@dataclass
class Context:
    sizes: Sizes
    out_dir: Path
    profile: bool = False
    quick: bool = False
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # results of earlier scenarios

    @property
    def log_dir(self) -> Path:
        return self.out_dir / "logs"


def runner(name: str) -> Callable[[Context], dict[str, Any]]:
    return importlib.import_module(f"bench.scenarios.{name}").run  # type: ignore[no-any-return]


def goal(label: str, value: float | None, op: str, target: float, unit: str = "") -> dict[str, Any]:
    """One goal: ``value op target`` (op is >=, <=, ==, < or >); unmeasured counts as missed."""
    checks = {">=": lambda v: v >= target, "<=": lambda v: v <= target, "==": lambda v: v == target,
              "<": lambda v: v < target, ">": lambda v: v > target}
    met = value is not None and bool(checks[op](value))
    return {"label": label, "value": value, "goal": f"{op.replace('>=', '≥').replace('<=', '≤')} {target:g}{unit}",
            "met": met}
