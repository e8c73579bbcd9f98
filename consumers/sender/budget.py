"""The sending budget: may this message go to this recipient from this sender now?

Three limits beyond a sender's gap, each with its own reason when it says "not yet":

- ``recipient_interval``: two calls to one recipient, from any sender, at least
  ``RECIPIENT_INTERVAL_SECONDS`` apart (contract section 2; the Cloud API's pair rate is one
  message per 6 s to one user).
- ``pair_rate``: after Meta's 131056 (pair rate hit) the recipient waits 4^X seconds,
  X = 0, 1, 2, ... per consecutive hit (Meta's advice), capped at ``MAX_PAIR_LEVEL``.
- ``daily_limit``: a sender reaches at most ``SenderConfig.limit_on(now)`` unique recipients
  per rolling ``DAILY_LIMIT_WINDOW_SECONDS`` (Meta's messaging limits; the warm-up ramp of a
  new number). ``daily_reserve`` of it is kept for ``high`` messages. A recipient already
  counted in the window costs nothing more, and one whose customer-service window is open
  (they wrote to us within ``CUSTOMER_WINDOW_SECONDS``) does not count: Meta counts only
  recipients messaged outside that window, so replies are free.

``check`` runs inside the sender's claim transaction: it locks the recipient's row (creating
it), so two senders can never both take a recipient's interval, and it reads the sender's
counted contacts, whose claims are already serialised by the sender's locked state row.
``commit`` records the call once the claim decided it goes, at its planned start;
``call_started`` moves that to the actual start once the call is made (it may start late).

The decisions themselves are pure functions over plain values (``decide`` and the helpers
below) reading the database through the small ``Ledger`` interface, so they are unit-tested
with an in-memory fake.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import BindParameter, ColumnElement, Select, Update, bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import Session

# The daily-limit arithmetic is shared with status and the drain estimate.
from wanotify.shared.capacity import allowance, must_leave, window_eta
from wanotify.shared.config import Settings
from wanotify.shared.db.models import Recipient, SenderContact
from wanotify.shared.priority import Priority
from wanotify.shared.senders import SenderConfig

RECIPIENT_INTERVAL = "recipient_interval"
PAIR_RATE = "pair_rate"
DAILY_LIMIT = "daily_limit"
REASONS = (RECIPIENT_INTERVAL, PAIR_RATE, DAILY_LIMIT)

# 4^5 s is about 17 minutes: past that, a recipient still rate-limited is better retried at that
# pace than pushed to hours away.
MAX_PAIR_LEVEL = 5
# A 131056 that comes this long after the previous back-off ended is a new episode (the retry
# after that back-off went through), so X starts again at 0.
PAIR_RATE_QUIET_SECONDS = 600.0


@dataclass(frozen=True)
class Due:
    """The message may go now, as far as the budget is concerned."""


@dataclass(frozen=True)
class NotYet:
    """The message must wait ``seconds`` (defer it, no attempt spent) for ``reason``."""

    seconds: float
    reason: str


Verdict = Due | NotYet


# --- the arithmetic, over plain values -----------------------------------------------------------

def interval_wait(last_call_at: datetime | None, now: datetime, interval: float) -> float:
    """Seconds until the recipient's interval since its last call has passed (0: it has)."""
    if last_call_at is None or interval <= 0:
        return 0.0
    return max(0.0, (last_call_at - now).total_seconds() + interval)


def backoff_wait(backoff_until: datetime | None, now: datetime) -> float:
    """Seconds left of a pair-rate back-off (0: none, or over)."""
    if backoff_until is None:
        return 0.0
    return max(0.0, (backoff_until - now).total_seconds())


def backoff_seconds(level: int) -> float:
    """Meta's 4^X seconds for the X-th consecutive pair-rate hit (X from 0), capped."""
    return float(4 ** min(max(level, 0), MAX_PAIR_LEVEL))


def next_backoff_level(level: int, backoff_until: datetime | None, now: datetime) -> int:
    """The X of a new hit: the stored level, unless the last back-off ended long ago."""
    if backoff_until is None or (now - backoff_until).total_seconds() > PAIR_RATE_QUIET_SECONDS:
        return 0
    return min(max(level, 0), MAX_PAIR_LEVEL)


def in_customer_window(last_inbound_at: datetime | None, now: datetime, window: float) -> bool:
    """Whether the recipient wrote to us within the customer-service window (a reply is free)."""
    return last_inbound_at is not None and (now - last_inbound_at).total_seconds() < window


# --- the reads a decision needs ------------------------------------------------------------------

@dataclass(frozen=True)
class RecipientFacts:
    last_call_at: datetime | None = None
    backoff_until: datetime | None = None
    last_inbound_at: datetime | None = None


class Ledger(ABC):
    """What ``decide`` reads: the recipient (locked by the real ledger) and the sender's counted
    contacts since ``since`` (the start of the rolling window)."""

    @abstractmethod
    def recipient(self, phone: str) -> RecipientFacts: ...

    @abstractmethod
    def counted(self, sender: str, phone: str, since: datetime) -> bool:
        """Whether ``phone`` is already counted for ``sender`` in the window."""

    @abstractmethod
    def used(self, sender: str, since: datetime) -> int:
        """How many recipients are counted for ``sender`` in the window."""

    @abstractmethod
    def nth_oldest(self, sender: str, since: datetime, n: int) -> datetime | None:
        """``first_at`` of the n-th oldest (from 1) counted contact in the window, None if fewer."""


def decide(ledger: Ledger, *, sender: SenderConfig, recipient: str, priority: Priority, now: datetime,
           interval: float, window: float, customer_window: float) -> Verdict:
    """The budget's verdict; when several limits hold the message, the longest wait wins."""
    facts = ledger.recipient(recipient)
    waits = [(interval_wait(facts.last_call_at, now, interval), RECIPIENT_INTERVAL),
             (backoff_wait(facts.backoff_until, now), PAIR_RATE)]
    if not in_customer_window(facts.last_inbound_at, now, customer_window):
        waits.append((_daily_wait(ledger, sender, recipient, priority, now, window), DAILY_LIMIT))
    seconds, reason = max(waits, key=lambda w: w[0])
    return NotYet(seconds, reason) if seconds > 0 else Due()


def _daily_wait(ledger: Ledger, sender: SenderConfig, recipient: str, priority: Priority, now: datetime,
                window: float) -> float:
    allowed = allowance(sender.limit_on(now), sender.daily_reserve, priority)
    if allowed is None:
        return 0.0
    since = now - timedelta(seconds=window)
    if ledger.counted(sender.name, recipient, since):
        return 0.0
    used = ledger.used(sender.name, since)
    leaving = must_leave(used, allowed)
    if leaving == 0:
        return 0.0
    oldest = ledger.nth_oldest(sender.name, since, leaving) if leaving <= used else None
    return window_eta(oldest, now, window)


# --- the database --------------------------------------------------------------------------------

class SqlLedger(Ledger):
    """The ledger in PostgreSQL; ``recipient`` locks the recipient's row, creating it if missing."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def recipient(self, phone: str) -> RecipientFacts:
        return recipient_facts(self.session, phone)

    def counted(self, sender: str, phone: str, since: datetime) -> bool:
        first_at = self.session.scalar(select(SenderContact.first_at).where(
            SenderContact.sender == sender, SenderContact.recipient == phone))
        return first_at is not None and first_at > since

    def used(self, sender: str, since: datetime) -> int:
        return self.session.scalar(select(func.count()).select_from(SenderContact).where(
            SenderContact.sender == sender, SenderContact.first_at > since)) or 0

    def nth_oldest(self, sender: str, since: datetime, n: int) -> datetime | None:
        return self.session.scalar(
            select(SenderContact.first_at).where(SenderContact.sender == sender, SenderContact.first_at > since)
            .order_by(SenderContact.first_at).offset(n - 1).limit(1))


def lock_recipient(session: Session, phone: str) -> Recipient:
    """The recipient's row, locked for this transaction (created on first contact), to change it.
    The usual recipient exists already, so the lock is one statement; only a new one is inserted first."""
    query = _recipient_lock()
    row = session.scalars(query, {"phone": phone}).one_or_none()
    if row is None:
        session.execute(insert(Recipient).values(phone=phone).on_conflict_do_nothing(index_elements=[Recipient.phone]))
        row = session.scalars(query, {"phone": phone}).one()
    return row


def recipient_facts(session: Session, phone: str) -> RecipientFacts:
    """What the budget reads of the recipient, whose row is locked for this transaction.

    A claim reads and locks it with the message (``locked_already``); checking the budget and
    counting the call then take it from the session, and cost no round trip."""
    locked = _locked(session)
    if phone not in locked:
        row = lock_recipient(session, phone)
        locked[phone] = RecipientFacts(row.last_call_at, row.pair_backoff_until, row.last_inbound_at)
    return locked[phone]


def locked_already(session: Session, phone: str, facts: RecipientFacts) -> None:
    """The recipient's row was locked for this transaction by another statement (the claim's
    read), which read ``facts`` of it."""
    _locked(session)[phone] = facts


def _locked(session: Session) -> dict[str, RecipientFacts]:
    """What was read of the recipients whose rows are locked in the session's current transaction, by phone."""
    transaction, locked = session.info.get(_LOCKED_RECIPIENTS, (None, {}))
    if transaction is not session.get_transaction():
        locked = {}
        session.info[_LOCKED_RECIPIENTS] = (session.get_transaction(), locked)
    return cast(dict[str, RecipientFacts], locked)


_LOCKED_RECIPIENTS = "wanotify.locked_recipients"  # session.info: (transaction, {phone: RecipientFacts})


# The claim's statements are built once, with bound parameters: building and keying a statement
# on every claim cost more CPU than running it.
@cache
def _recipient_lock() -> Select[Recipient]:
    return (select(Recipient).where(Recipient.phone == bindparam("phone")).with_for_update()
            .execution_options(populate_existing=True))


def check(session: Session, *, sender: SenderConfig, recipient: str, priority: Priority, now: datetime,
          settings: Settings) -> Due | NotYet:
    """Whether the budget lets this message go at ``now`` (call inside the claim's transaction)."""
    return decide(SqlLedger(session), sender=sender, recipient=recipient, priority=Priority(priority), now=now,
                  interval=settings.recipient_interval_seconds, window=settings.daily_window_seconds,
                  customer_window=settings.customer_window_seconds)


@dataclass(frozen=True)
class Counting:
    """The statements that count a call, and their parameters (names prefixed ``count_``, so
    the claim can run them beside its own statements in one)."""

    statements: tuple[Update | Insert, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)


def commit(session: Session, *, sender: SenderConfig, recipient: str, planned: datetime, settings: Settings) -> None:
    """Record a call planned at ``planned`` (``counting``'s statements, run one by one)."""
    counted = counting(session, sender=sender, recipient=recipient, planned=planned, settings=settings)
    for statement in counted.statements:
        session.execute(statement, counted.params)


def counting(session: Session, *, sender: SenderConfig, recipient: str, planned: datetime,
             settings: Settings) -> Counting:
    """What records a call planned at ``planned``: the recipient's interval runs from it, and the
    recipient is counted against the sender's daily limit (unless their customer-service window
    is open); a contact counted before the window began starts a new count at ``planned``. The
    claim runs the statements inside its one write statement."""
    facts = recipient_facts(session, recipient)
    params: dict[str, Any] = {"count_recipient": recipient, "count_planned": planned}
    if in_customer_window(facts.last_inbound_at, planned, settings.customer_window_seconds):
        return Counting((_interval_from_planned(),), params)
    window_start = planned - timedelta(seconds=settings.daily_window_seconds)
    return Counting((_interval_from_planned(), _contact_counted()),
                    params | {"count_sender": sender.name, "count_window_start": window_start})


@cache
def _interval_from_planned() -> Update:
    planned: BindParameter[datetime] = bindparam("count_planned")
    return update(Recipient).where(Recipient.phone == bindparam("count_recipient")).values(
        last_call_at=func.greatest(func.coalesce(Recipient.last_call_at, planned), planned))


@cache
def _contact_counted() -> Insert:
    stmt = insert(SenderContact).values(sender=bindparam("count_sender"), recipient=bindparam("count_recipient"),
                                        first_at=bindparam("count_planned"))
    return stmt.on_conflict_do_update(
        index_elements=[SenderContact.sender, SenderContact.recipient],
        set_={"first_at": case((SenderContact.first_at <= bindparam("count_window_start"), stmt.excluded.first_at),
                               else_=SenderContact.first_at)})


def call_started(session: Session, sender: str, recipient: str, seconds_ago: float) -> None:
    """Move the recipient's last call from its planned start to its actual start, on the database
    clock, when that is later: a call that started late (a slow first connection, a busy host)
    would otherwise let the next message to the recipient come early by as much. The contact the
    call counted against the daily limit leaves the window that much later too.

    ``clock_timestamp() - seconds_ago`` is never earlier than the real start: the statement runs
    after the moment ``seconds_ago`` was measured."""
    started = session.scalar(select(func.clock_timestamp() - timedelta(seconds=seconds_ago)))  # once, for both rows
    planned = select(Recipient.last_call_at).where(Recipient.phone == recipient).scalar_subquery()
    # The contact this call counted (its first_at is the planned start) starts its window then
    # too. It is ``sender``'s: the table's key is (sender, recipient), and the recipient alone
    # would scan every sender's contacts.
    session.execute(update(SenderContact)
                    .where(SenderContact.sender == sender, SenderContact.recipient == recipient,
                           SenderContact.first_at == planned)
                    .values(first_at=func.greatest(SenderContact.first_at, started)))
    session.execute(update(Recipient).where(Recipient.phone == recipient).values(
        last_call_at=func.greatest(Recipient.last_call_at, started)))


def started_parts(at: ColumnElement[datetime]) -> list[Update]:
    """What ``call_started`` and ``pair_rate_cleared`` do, as statements to run inside the
    success's one statement (``store.record_plain_send``): ``at`` is the call's actual start
    there, and the sender and recipient are its bound ``sent_sender`` and ``sent_recipient``."""
    recipient: BindParameter[str] = bindparam("sent_recipient")
    planned = select(Recipient.last_call_at).where(Recipient.phone == recipient).scalar_subquery()
    return [update(SenderContact)
            .where(SenderContact.sender == bindparam("sent_sender"), SenderContact.recipient == recipient,
                   SenderContact.first_at == planned)
            .values(first_at=func.greatest(SenderContact.first_at, at)),
            update(Recipient).where(Recipient.phone == recipient)
            .values(last_call_at=func.greatest(Recipient.last_call_at, at), pair_backoff_level=0)]


def pair_rate_hit(session: Session, recipient: str, now: datetime) -> float:
    """Meta said 131056 for this recipient: back off 4^X s; returns the seconds (defer by them)."""
    row = lock_recipient(session, recipient)
    level = next_backoff_level(row.pair_backoff_level, row.pair_backoff_until, now)
    seconds = backoff_seconds(level)
    row.pair_backoff_until = now + timedelta(seconds=seconds)
    row.pair_backoff_level = min(level + 1, MAX_PAIR_LEVEL)
    return seconds


def pair_rate_cleared(session: Session, recipient: str) -> None:
    """A call to this recipient went through: the next 131056 starts again at X = 0."""
    session.execute(update(Recipient).where(Recipient.phone == recipient, Recipient.pair_backoff_level > 0)
                    .values(pair_backoff_level=0))
