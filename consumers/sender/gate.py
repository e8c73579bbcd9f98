"""The budget as the claim sees it: is this message due now, and what a sent one uses up.

The rules themselves (recipient interval, the Cloud API's pair-rate back-off, daily
unique-recipient limits with warm-up and a high-priority reserve) live in
``wanotify.consumers.sender.budget`` as decision functions over the database session; the
``BudgetGate`` calls them inside the claim's transaction. ``Gate`` is the small interface the
claim runs against, so tests can put a fake in its place.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Update
from sqlalchemy.orm import Session

from wanotify.consumers.sender import budget
from wanotify.shared.config import Settings
from wanotify.shared.priority import Priority

if TYPE_CHECKING:
    from wanotify.shared.senders import SenderConfig


# The call's actual start -> statements that move a gate's records to it.
StartedParts = Callable[[ColumnElement[datetime]], list[Update]]


@dataclass(frozen=True)
class NotDue:
    seconds: float
    reason: str  # a short code, stored as the message's held_reason


class Gate(abc.ABC):
    @abc.abstractmethod
    def check(self, session: Session, config: SenderConfig, recipient: str, priority: Priority,
              now: datetime) -> NotDue | None:
        """None when the message may go now; else how long it must wait, and why."""

    @abc.abstractmethod
    def count(self, session: Session, config: SenderConfig, recipient: str, planned: datetime) -> budget.Counting:
        """The statements that count the call about to be made (planned to start at ``planned``):
        the claim runs them in its one write, beside its own."""

    @abc.abstractmethod
    def pair_rate_hit(self, session: Session, recipient: str, now: datetime) -> float:
        """The provider refused for sending to ``recipient`` too often: seconds to hold it back."""

    @abc.abstractmethod
    def delivered(self, session: Session, recipient: str) -> None:
        """A call to ``recipient`` went through (the pair-rate back-off starts over)."""

    def started(self, session: Session, sender: str, recipient: str, seconds_ago: float) -> None:  # noqa: B027
        """``sender``'s call to ``recipient`` actually started ``seconds_ago`` (later than planned,
        perhaps). Optional: a gate that counts nothing has nothing to move."""

    def started_parts(self) -> StartedParts | None:
        """What ``started`` and ``delivered`` do, as statements the success's record runs in its
        one statement (``budget.started_parts`` says how); None: they run in the record's
        transaction instead. Return the same object each time: the record's statement is built
        once per value and kept."""
        return None


class BudgetGate(Gate):
    """The budget rules of ``wanotify.consumers.sender.budget``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def check(self, session: Session, config: SenderConfig, recipient: str, priority: Priority,
              now: datetime) -> NotDue | None:
        verdict = budget.check(session, sender=config, recipient=recipient, priority=priority, now=now,
                               settings=self.settings)
        if isinstance(verdict, budget.NotYet):
            return NotDue(verdict.seconds, verdict.reason)
        return None

    def count(self, session: Session, config: SenderConfig, recipient: str, planned: datetime) -> budget.Counting:
        return budget.counting(session, sender=config, recipient=recipient, planned=planned, settings=self.settings)

    def pair_rate_hit(self, session: Session, recipient: str, now: datetime) -> float:
        return float(budget.pair_rate_hit(session, recipient, now))

    def delivered(self, session: Session, recipient: str) -> None:
        budget.pair_rate_cleared(session, recipient)

    def started(self, session: Session, sender: str, recipient: str, seconds_ago: float) -> None:
        budget.call_started(session, sender, recipient, seconds_ago)

    def started_parts(self) -> StartedParts:
        return budget.started_parts
