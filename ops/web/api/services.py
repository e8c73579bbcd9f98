"""What the API reads from the database: the event types rules name, and messages as the API shows them.

The message views are built on the console's own service (``wanotify.ops.admin.messages``),
so both mask phone numbers the same way: the recipient, and any number inside an error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wanotify.ops.admin import messages
from wanotify.ops.web.api.models import MessageStatus, Parked
from wanotify.shared.db.models import DeadEvent, Rule
from wanotify.shared.phone import mask_phones_in_text

RULES_CACHE_SECONDS = 10.0
MAX_MESSAGES_PER_EVENT = 100


def rule_event_types(session: Session) -> frozenset[str]:
    """Event types an active rule names: the ones the notifier turns into messages."""
    return frozenset(session.scalars(select(Rule.event_type).where(Rule.active).distinct()))


class KnownTypes:
    """``rule_event_types``, read again at most every ``cache_seconds`` (rules change rarely)."""

    def __init__(self, cache_seconds: float = RULES_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._types: frozenset[str] = frozenset()
        self._until = float("-inf")

    def fresh(self) -> frozenset[str] | None:
        return self._types if self.clock() < self._until else None

    def remember(self, types: frozenset[str]) -> None:
        self._types = types
        self._until = self.clock() + self.cache_seconds


def message_status(session: Session, message_id: int) -> dict[str, Any] | None:
    """One message as ``MessageStatus`` (JSON-ready), or None when there is no such message."""
    found = messages.detail(session, message_id)
    return None if found is None else _view(found)


def event_messages(session: Session, event_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every message the event became (one per template), oldest first."""
    page = messages.search(session, messages.MessageQuery(event_id=event_id), limit=MAX_MESSAGES_PER_EVENT)
    views = [message_status(session, row["id"]) for row in reversed(page["rows"])]
    return [v for v in views if v is not None]


def event_parked(session: Session, event_id: uuid.UUID) -> dict[str, Any] | None:
    """Why the notifier parked the event (``Parked``, JSON-ready), or None if it is not parked."""
    found = session.scalars(select(DeadEvent).where(DeadEvent.event_id == str(event_id), DeadEvent.status == "parked")
                            .order_by(DeadEvent.parked_at.desc()).limit(1)).first()
    if found is None:
        return None
    return Parked(reason=found.reason, detail=mask_phones_in_text(found.detail),
                  parked_at=found.parked_at).model_dump(mode="json")


def _view(m: dict[str, Any]) -> dict[str, Any]:
    receipts = m["receipts"]
    view = {**m, "last_error": m["error"], "delivered_at": _first(receipts, "delivered"), "read_at": _first(receipts, "read"),
            "receipts": receipts, "calls": m["attempts_list"]}
    return MessageStatus.model_validate(view).model_dump(mode="json")


def _first(receipts: list[dict[str, Any]], status: str) -> Any:
    return next((r["at"] or r["received_at"] for r in receipts if r["status"] == status), None)
