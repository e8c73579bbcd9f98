"""Event data for scenario tests."""

from __future__ import annotations

import itertools
from typing import Any


def member(i: int) -> dict[str, Any]:
    return {"member_id": f"M-{i}", "name": f"Member {i}", "phone": f"0811404{i:04d}"}


def payment_link(i: int) -> dict[str, Any]:
    return member(i) | {"amount": 150000 + i, "payment_url": f"https://pay.example.com/i/{i}"}


def requested(i: int, priority: str) -> dict[str, Any]:
    return {"phone": f"0812555{i:04d}", "template": "test_message", "priority": priority,
            "variables": {"sent_at": f"{priority}-{i}"}}


def gaps(calls: list[dict[str, Any]]) -> list[float]:
    return [b["t"] - a["t"] for a, b in itertools.pairwise(calls)]
