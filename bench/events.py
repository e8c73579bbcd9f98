"""Event data for the scenarios: distinct members with valid Indonesian mobile numbers."""

from __future__ import annotations

from typing import Any


def person(i: int) -> dict[str, Any]:
    return {"member_id": f"B-{i}", "name": f"Bench {i}", "phone": f"0812{i % 10**8:08d}"}


def registered(i: int) -> tuple[str, dict[str, Any]]:
    """member.registered: one normal-priority welcome message."""
    return "member.registered", person(i)


def payment_link(i: int) -> tuple[str, dict[str, Any]]:
    """payment.link_created: one high-priority payment link."""
    return "payment.link_created", person(i) | {"amount": 150000, "payment_url": f"https://pay.example.com/b/{i}"}


def name_in(body: str) -> str | None:
    """The "Bench N" name a message body was rendered with (to match calls to events)."""
    start = body.find("Bench ")
    if start < 0:
        return None
    digits = ""
    for ch in body[start + 6:]:
        if not ch.isdigit():
            break
        digits += ch
    return f"Bench {digits}" if digits else None
