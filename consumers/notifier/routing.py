"""Which sender (WhatsApp number) each message goes out from (contract section 7).

The rule, first match wins:

1. **A pin.** ``data.sender`` of a ``notification.requested`` event (planning parks the event
   when that sender is unknown or disabled), or the rule's ``sender`` while that sender is
   active (a rule pinned to a disabled number falls through, so disabling a number never
   parks a whole event type).
2. **The recipient's own sender** (``recipients.sender``), while it is active: a conversation
   stays on one number.
3. **First contact** (or the recipient's sender was disabled or removed): the least-loaded
   active sender — the fewest messages waiting (``queued`` or ``failed``), then the fewest
   recipients sticking to it, then the name — stored as the recipient's sender. Within one
   batch each choice counts as load before the next is made, so a burst of new recipients
   spreads evenly.

The choice is stored with ``INSERT … ON CONFLICT DO UPDATE … WHERE`` the stored sender is
missing or inactive: when two notifiers route the same new recipient at once, the second
upsert finds the first one's sender (active), changes nothing, and reads it back, so both
agree.

With no sender rows (the environment's single number) every message goes to ``default`` and
nothing is read or written beyond the one query that finds there are no rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import all_, func, or_, select
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.orm import Session

from wanotify.shared.db.models import MessageLog, Recipient, SenderRow, Status
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.messages import SendCommand
from wanotify.shared.topology import DEFAULT_SENDER

WAITING = (Status.QUEUED.value, Status.FAILED.value)
NO_ACTIVE_SENDER = ("every sender is disabled — add one (`wanotify senders add`) or enable one "
                    "(`wanotify senders set NAME --enable`)")


@dataclass(frozen=True)
class SenderNames:
    """The senders a message may be routed to, read once per batch."""

    active: tuple[str, ...] = (DEFAULT_SENDER,)  # by name
    disabled: frozenset[str] = frozenset()
    from_rows: bool = False  # False: no sender rows; the environment's `default` is the only sender

    def check_any_active(self) -> None:
        """``InvalidEvent`` when no sender can send: the event is parked, to be replayed later."""
        if not self.active:
            raise InvalidEvent("sender_disabled", NO_ACTIVE_SENDER)

    def check_pin(self, sender: str) -> None:
        """``InvalidEvent`` (the event is parked) when an event pins a sender that cannot send."""
        if sender in self.active:
            return
        if sender in self.disabled:
            raise InvalidEvent("sender_disabled", f"data.sender {sender!r} is disabled — pin an active sender, "
                               "or leave data.sender out to use the recipient's own")
        known = ", ".join(self.active)
        raise InvalidEvent("unknown_sender", f"data.sender {sender!r} is not a sender (active senders: {known}) — "
                           "`wanotify senders list` shows them")

    def usable(self, sender: str | None) -> bool:
        return sender is not None and sender in self.active


def load_sender_names(session: Session) -> SenderNames:
    """One query: every sender's name and whether it is disabled."""
    rows = session.execute(select(SenderRow.name, SenderRow.disabled_at).order_by(SenderRow.name)).all()
    if not rows:
        return SenderNames()
    active = tuple(name for name, disabled_at in rows if disabled_at is None)
    return SenderNames(active, frozenset(name for name, disabled_at in rows if disabled_at is not None), True)


@dataclass
class Load:
    """How busy each sender is: messages waiting, and recipients sticking to it."""

    waiting: dict[str, int] = field(default_factory=dict)
    recipients: dict[str, int] = field(default_factory=dict)

    def least_loaded(self, active: Sequence[str]) -> str:
        if not active:
            raise InvalidEvent("sender_disabled", NO_ACTIVE_SENDER)
        return min(active, key=lambda s: (self.waiting.get(s, 0), self.recipients.get(s, 0), s))

    def assign(self, sender: str, messages: int) -> None:
        self.waiting[sender] = self.waiting.get(sender, 0) + messages
        self.recipients[sender] = self.recipients.get(sender, 0) + 1


def choose_new(new: dict[str, int], active: Sequence[str], load: Load) -> dict[str, str]:
    """A sender for each new recipient (phone -> its number of messages), least loaded first;
    ``load`` grows with each choice. Phones are taken in order, so a choice is reproducible."""
    chosen: dict[str, str] = {}
    for phone in sorted(new):
        chosen[phone] = load.least_loaded(active)
        load.assign(chosen[phone], new[phone])
    return chosen


def read_load(session: Session, active: Sequence[str]) -> Load:
    """Two grouped counts, only when a new recipient needs a sender and there is a choice."""
    waiting = session.execute(select(MessageLog.sender, func.count()).where(
        MessageLog.sender.in_(active), MessageLog.status.in_(WAITING)).group_by(MessageLog.sender)).all()
    sticking = session.execute(select(Recipient.sender, func.count()).where(
        Recipient.sender.in_(active)).group_by(Recipient.sender)).all()
    return Load({str(s): n for s, n in waiting}, {str(s): n for s, n in sticking})


class LoadCache:
    """The load, read at most every ``ttl`` seconds: the two counts scan the waiting messages
    and the recipients (about 0.2 s with 100,000 of each), too much for every batch of a burst
    of new recipients. Between reads, this process's own choices are added to it, so a burst
    still spreads evenly; other notifiers' choices show at the next read."""

    def __init__(self, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._load: Load | None = None
        self._key: tuple[str, ...] = ()
        self._read_at = 0.0

    def get(self, session: Session, active: Sequence[str]) -> Load:
        now = self.clock()
        if self._load is None or self._key != tuple(active) or now - self._read_at >= self.ttl:
            self._load, self._key, self._read_at = read_load(session, active), tuple(active), now
        return self._load


def route(session: Session, wanted: Sequence[tuple[str, str | None]], names: SenderNames,
          loads: LoadCache | None = None) -> list[str]:
    """The sender of each message, given as (recipient, pinned sender or None), in order."""
    if not names.from_rows:
        return [DEFAULT_SENDER for _ in wanted]
    unpinned: dict[str, int] = {}
    for recipient, pin in wanted:
        if not names.usable(pin):
            unpinned[recipient] = unpinned.get(recipient, 0) + 1
    own = recipient_senders(session, unpinned, names, loads) if unpinned else {}
    return [pin if pin is not None and names.usable(pin) else own[recipient] for recipient, pin in wanted]


def recipient_senders(session: Session, phones: dict[str, int], names: SenderNames,
                      loads: LoadCache | None = None) -> dict[str, str]:
    """Each recipient's own sender (phone -> how many messages it is for), chosen and stored for
    those who have none or whose sender cannot send any more. Without ``loads`` the load is read
    now (an admin action); the notifier passes its cache."""
    if not names.from_rows:
        return dict.fromkeys(phones, DEFAULT_SENDER)
    stored = dict(session.execute(select(Recipient.phone, Recipient.sender).where(Recipient.phone.in_(phones))).all())
    own = {phone: str(sender) for phone, sender in stored.items() if names.usable(sender)}
    new = {phone: n for phone, n in phones.items() if phone not in own}
    if new:
        own |= _store_choices(session, choose_new(new, names.active, _load(session, names, loads)), names)
    return {phone: own[phone] for phone in phones}


def _store_choices(session: Session, chosen: dict[str, str], names: SenderNames) -> dict[str, str]:
    """Store first-contact choices; a recipient another notifier routed meanwhile keeps that
    notifier's (active) sender, read back here. Rows go in phone order, so two batches lock
    the same recipients in the same order and never deadlock."""
    stmt = insert(Recipient)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Recipient.phone], set_={"sender": stmt.excluded.sender, "updated_at": func.now()},
        where=or_(Recipient.sender.is_(None), Recipient.sender != all_(array(names.active))))
    # One cached statement with many parameter sets (SQLAlchemy batches them into multi-row
    # statements): compiling a fresh 200-row VALUES list each batch cost more than running it.
    rows = [{"phone": p, "sender": s} for p, s in sorted(chosen.items())]
    stored = dict(session.execute(stmt.returning(Recipient.phone, Recipient.sender), rows).all())
    lost = [phone for phone in chosen if phone not in stored]
    if lost:
        stored |= dict(session.execute(select(Recipient.phone, Recipient.sender).where(Recipient.phone.in_(lost))).all())
    return {phone: str(sender) for phone, sender in stored.items()}


def _load(session: Session, names: SenderNames, loads: LoadCache | None) -> Load:
    if len(names.active) < 2:
        return Load()  # no choice to make: nothing to read
    return loads.get(session, names.active) if loads else read_load(session, names.active)


class RoutedRow(Protocol):
    """A log row that may be sent again (a replay, a retry): its recipient and its sender."""

    recipient: str
    sender: str | None


def reroute_rows(session: Session, rows: Iterable[Any], names: SenderNames | None = None) -> int:
    """Give rows whose sender cannot send (disabled, removed) their recipient's sender, as for
    a new message; returns how many moved. Rows are ``MessageLog`` objects, changed in place."""
    names = names or load_sender_names(session)
    stranded: list[RoutedRow] = [row for row in rows if not names.usable(row.sender or DEFAULT_SENDER)]
    if not stranded:
        return 0
    counts: dict[str, int] = {}
    for row in stranded:
        counts[row.recipient] = counts.get(row.recipient, 0) + 1
    own = recipient_senders(session, counts, names)
    for row in stranded:
        row.sender = own[row.recipient]
    return len(stranded)


def reroute_copies(session: Session, commands: Sequence[SendCommand], names: SenderNames | None = None) -> list[SendCommand]:
    """The copies, those of a sender that cannot send (disabled, removed) moved to their
    recipient's sender (their log rows too): ``retry-failed`` sends them from a number that works."""
    names = names or load_sender_names(session)
    stranded = {c.log_id for c in commands if not names.usable(c.sender)}
    if not stranded:
        return list(commands)
    rows = session.scalars(select(MessageLog).where(MessageLog.id.in_(stranded))).all()
    reroute_rows(session, rows, names)
    moved = {row.id: row.sender or DEFAULT_SENDER for row in rows}
    return [c.on(moved[c.log_id]) if c.log_id in moved else c for c in commands]
