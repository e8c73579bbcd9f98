"""The sender's database work: claiming a call slot, and recording what the call did.

``claim`` is the one place that decides whether a copy may be sent now. In one transaction it
locks the sender's ``sender_state`` row (per namespace and sender, i.e. per number) and the
message's log row, drops stale copies, checks the lease (only its holder sends for the
number), honours a pause and the gap left by another process (the time of the number's last
call is kept here, on the database's clock), asks the budget (recipient interval, pair rate,
daily limit) whether the message is due, then marks the row ``pending``, owned by this sender
process, and stores the planned start of our call. Because the state row is locked, two
processes can never both claim the same slot of a number.

A copy of a ``pending`` row is a redelivery while a call may be in progress. While the claimant
lives, the copy waits, and the claimant's record makes it stale. When another process claimed
it and is gone, it died during the call, whose request may have reached WhatsApp: the message
is parked ``dead`` ("outcome unknown") rather than sent a second time. When this process claimed
it and holds no call for it, the call was never made (the claim's commit reached the database,
its answer did not), and it is made now ("ambiguous").

The same read of the row brings, joined in, its template's approved-template mapping, Meta's
status of that template and the recipient's window and opt-out, so choosing how the message
goes (``choice.py``) costs no extra query. A message that must not go (opted out, no usable
template) is refused in the claim itself: no call, no attempt spent, no wait for the gap.

What is recorded after a call cannot fail on its data: texts lose NUL characters and are cut
to their column's size, so a call that succeeded is never left looking unfinished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Interval, Select, Update, and_, bindparam, func, select, true, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import Session

from wanotify.consumers.sender import budget, lease, liveness
from wanotify.consumers.sender.budget import Counting
from wanotify.consumers.sender.choice import Facts, Form, Refusal, Rules, Text, choose
from wanotify.shared import recipients
from wanotify.shared.config import Settings
from wanotify.shared.db import folded
from wanotify.shared.db.models import Attempt, MessageLog, MetaTemplate, Recipient, SenderState, Status, Template
from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import SendCommand
from wanotify.shared.meta_templates import Mapping, TemplateCall
from wanotify.shared.runtime import RuntimeSettings
from wanotify.shared.topology import DEFAULT_SENDER

if TYPE_CHECKING:
    from wanotify.consumers.sender.gate import Gate, StartedParts
    from wanotify.shared.senders import SenderConfig

PLAIN_TEXT = Text()


@dataclass(frozen=True)
class Go:
    recipient: str
    body: str
    template: str
    # Seconds another sender's last call still imposes (0 when this sender made the last
    # call: its own gap is kept by its monotonic clock).
    external_wait: float
    runtime: RuntimeSettings
    attempt_id: int
    ambiguous: bool  # the previous try of this attempt died mid-call
    form: Form = PLAIN_TEXT  # free-form text, or an approved template (Cloud API)
    gap: float | None = None  # this sender's gap before the call (None: the runtime gap)

    @property
    def gap_seconds(self) -> float:
        return self.runtime.gap_seconds if self.gap is None else self.gap


@dataclass(frozen=True)
class Wait:
    seconds: float
    paused: bool = False
    why: str = "gap"  # gap, paused, lease (not ours), or claimed (another try of this message is in progress)
    pause_reason: str | None = None  # when paused: the sender's pause reason


# How often a copy whose message is being sent by a live claimant looks again.
CLAIMANT_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class Stale:
    reason: str


@dataclass(frozen=True)
class Refused:
    """Not sent, and recorded so: parked (``dead``) or ``cancelled`` by an opt-out."""

    refusal: Refusal


@dataclass(frozen=True)
class Deferred:
    """Not due yet (the budget said so): held back ``seconds`` without spending an attempt."""

    seconds: float
    reason: str


Claim = Go | Wait | Stale | Refused | Deferred


@dataclass(frozen=True)
class Pool:
    """What a claim in the sender pool adds to the plain one: which number, its gap, its lease
    and the budget (all optional, so a claim without them behaves as before the pool)."""

    sender: str = DEFAULT_SENDER
    gap: float | None = None  # the gap drawn for this sender's next call (None: the runtime gap)
    require_lease: bool = False
    gate: Gate | None = None
    config: SenderConfig | None = None


def claim(session: Session, command: SendCommand, settings: Settings, sender_id: str,
          local_remaining: Callable[[float], float], lead: float,
          runtime_of: Callable[[Session], RuntimeSettings], in_flight: Callable[[int], bool],
          rules: Rules | None = None, pool: Pool | None = None) -> Claim:
    """Decide for one copy; ``in_flight(log_id)`` tells whether this process is still working on
    an earlier copy of the same message; ``rules`` how it may go (default: text, no window);
    ``pool`` which number sends it, under which lease and budget."""
    pool = pool or Pool()
    state, now, row, facts, attempt_id = _lock(session, settings.namespace, pool.sender, command.log_id)
    if pool.require_lease and not lease.holds(state, sender_id, now):
        return Wait(lease.RENEW_SECONDS, why="lease")
    verdict = _copy_verdict(row, command)
    if isinstance(verdict, Stale):
        return verdict
    assert row is not None and facts is not None and attempt_id is not None
    if verdict and _claimant_still_working(session, row, sender_id, in_flight, now):
        return Wait(CLAIMANT_WAIT_SECONDS, why="claimed")
    if verdict and row.claimed_by != sender_id:
        return _outcome_unknown(session, row, command, now)
    # Parameters render here, under the state lock: bounded like every render, and microseconds.
    form = choose(facts, now, rules or Rules(False, False, settings.customer_window_seconds, settings.opt_out_scope))
    if isinstance(form, Refusal):
        _settle_row(session, row.id, form, now)
        return Refused(form)
    runtime = runtime_of(session)
    if state.paused_until and state.paused_until > now:
        return Wait((state.paused_until - now).total_seconds(), paused=True, why="paused",
                    pause_reason=state.pause_reason)
    gap = runtime.gap_seconds if pool.gap is None else pool.gap
    external = _external_wait(state, now, gap, sender_id)
    wait = max(external, local_remaining(gap))
    if wait > lead:
        return Wait(wait)
    planned = now + timedelta(seconds=wait)
    counting = Counting()
    if pool.gate is not None and pool.config is not None:
        not_due = pool.gate.check(session, pool.config, row.recipient, command.priority, now)
        if not_due is not None:
            _hold_row(session, row.id, not_due.seconds, not_due.reason, now)
            return Deferred(not_due.seconds, not_due.reason)
        counting = pool.gate.count(session, pool.config, row.recipient, planned)
    _mark_claimed(session, command, state, row.id, attempt_id, sender_id, planned, now, counting)
    return Go(row.recipient, row.body, row.template, external, runtime, attempt_id, ambiguous=verdict, form=form,
              gap=pool.gap)


def _outcome_unknown(session: Session, row: MessageRow, command: SendCommand, now: datetime) -> Refused:
    """Another process died during this attempt's call: the request may have reached WhatsApp,
    and calling again could send the member a second message (contract section 1). The row is
    parked ``dead`` for an admin to check and replay; the dead try's attempt says ``unknown``."""
    refusal = Refusal(Status.DEAD, OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_REASON)
    _settle_row(session, row.id, refusal, now)
    session.execute(update(Attempt).where(Attempt.log_id == row.id, Attempt.attempt == command.attempt,
                                          Attempt.outcome.is_(None)).values(outcome="unknown"))
    return Refused(refusal)


def _settle_row(session: Session, log_id: int, refusal: Refusal, now: datetime) -> None:
    """The message is not sent: its row takes the refusal's status, reason and code."""
    session.execute(update(MessageLog).where(MessageLog.id == log_id).values(
        status=refusal.status, last_error=clean(refusal.reason, ERROR_CHARS), error_code=refusal.code,
        updated_at=now, next_attempt_at=None))


def _hold_row(session: Session, log_id: int, seconds: float, reason: str, now: datetime) -> None:
    """The budget holds the message back: its row says until when and why, for the console."""
    session.execute(update(MessageLog).where(MessageLog.id == log_id).values(
        held_until=now + timedelta(seconds=seconds), held_reason=clean(reason, HELD_CHARS)))


def _mark_claimed(session: Session, command: SendCommand, state: StateRow, log_id: int, attempt_id: int,
                  sender_id: str, planned: datetime, now: datetime, counting: Counting) -> None:
    """Everything a claim that goes writes, as one statement that also commits, in one round
    trip: the number's last call (planned), the row ``pending`` and ours, the budget's count,
    and the attempt. The rows are already locked by the claim. It runs on the session's
    connection as a plain statement: the ORM has nothing to keep in step here. Parameter names
    are prefixed: a name that matches a column of the statement's table would be taken for a
    value of that column."""
    params = counting.params | {
        "claim_namespace": state.namespace, "claim_sender": state.sender, "claim_sender_id": sender_id,
        "claim_planned": planned, "claim_now": now, "claim_log_id": log_id, "claim_attempt": command.attempt,
        "claim_attempt_id": attempt_id}
    folded.commit_with_next(session)
    session.connection().execute(_claimed_write(counting.statements), params)


@cache
def _claimed_write(counting: tuple[Update | Insert, ...]) -> Insert:
    """The claim's write for one set of budget statements (there are few: built once each)."""
    parts = [statement.cte(f"count_{i}") for i, statement in enumerate(counting)]
    parts.append(update(SenderState)
                 .where(SenderState.namespace == bindparam("claim_namespace"),
                        SenderState.sender == bindparam("claim_sender"))
                 .values(sender_id=bindparam("claim_sender_id"), last_call_at=bindparam("claim_planned")).cte("state"))
    parts.append(update(MessageLog).where(MessageLog.id == bindparam("claim_log_id")).values(
        status=Status.PENDING, attempts=bindparam("claim_attempt"), updated_at=bindparam("claim_now"),
        claimed_by=bindparam("claim_sender_id"), held_until=None, held_reason=None).cte("log"))
    return (insert(Attempt).values(id=bindparam("claim_attempt_id"), log_id=bindparam("claim_log_id"),
                                   attempt=bindparam("claim_attempt"), started_at=bindparam("claim_planned"))
            .add_cte(*parts))


class StateRow(NamedTuple):
    """The number's ``sender_state`` row, as the claim reads it (locked)."""

    namespace: str
    sender: str
    sender_id: str | None
    lease_holder: str | None
    lease_expires_at: datetime | None
    last_call_at: datetime | None
    paused_until: datetime | None
    pause_reason: str | None


class MessageRow(NamedTuple):
    """What the claim reads of the message's log row (locked)."""

    id: int
    status: str
    attempts: int
    claimed_by: str | None
    recipient: str
    body: str
    template: str
    event_type: str
    priority: str
    variables: dict[str, Any] | None


_STATE_COLUMNS = tuple(getattr(SenderState, name) for name in StateRow._fields)
_MESSAGE_COLUMNS = tuple(getattr(MessageLog, name) for name in MessageRow._fields)


def _lock(session: Session, namespace: str, sender: str,
          log_id: int) -> tuple[StateRow, datetime, MessageRow | None, Facts | None, int | None]:
    """Lock the number's state row, the message's row and its recipient's, in that order and in
    one statement, and read the database clock, what choosing the message's form needs and the
    id the call's attempt will have; the budget then finds the recipient already locked. The
    message's recipient gets its row first if it has none, in the same round trip. The number's
    first call ever makes its state row first (a message that does not exist leaves its part None).

    It reads plain columns, not ORM objects: the claim changes its rows with statements of its
    own, and loading three objects cost more of the sender's CPU than running the statement."""
    key = {"namespace": namespace, "sender": sender, "log_id": log_id}
    folded.run_with_next(session, _first_contact(), {"log_id": log_id})
    found = session.connection().execute(_locking_read(), key).first()
    if found is None:  # the number's first call ever, most likely
        lease.ensure_rows(session, namespace, [sender])
        found = session.connection().execute(_locking_read(), key).first()
    if found is None:  # no such message
        state, now = _lock_state(session, namespace, sender)
        return state, now, None, None, None
    states, messages = len(StateRow._fields), len(MessageRow._fields)
    state, row = StateRow._make(found[:states]), MessageRow._make(found[states:states + messages])
    (now, name, language, category, params, status, last_call_at, backoff_until, last_inbound_at, opted_out_at,
     attempt_id) = found[states + messages:]
    budget.locked_already(session, row.recipient, budget.RecipientFacts(last_call_at, backoff_until, last_inbound_at))
    return state, now, row, Facts(row.recipient, row.template, row.event_type, row.priority, row.variables,
                                  Mapping.from_columns(name, language, category, params), status,
                                  last_inbound_at, opted_out_at), attempt_id


def _lock_state(session: Session, namespace: str, sender: str) -> tuple[StateRow, datetime]:
    """Lock this sender's state row (created on first use) and read the database clock."""
    key = {"namespace": namespace, "sender": sender}
    found = session.connection().execute(_state_lock(), key).first()
    if found is None:
        lease.ensure_rows(session, namespace, [sender])
        found = session.connection().execute(_state_lock(), key).one()
    return StateRow._make(found[:-1]), found[-1]


# The claim's reads are built once, with bound parameters: building and keying the statements
# on every claim cost more CPU than running them.
@cache
def _locking_read() -> Select[Any]:
    # PostgreSQL locks the rows in the order FOR UPDATE OF names them: the number's state row
    # first, as every claim does, so two claims never wait on each other in opposite orders.
    return (
        select(*_STATE_COLUMNS, *_MESSAGE_COLUMNS, func.clock_timestamp(), Template.meta_name, Template.meta_language,
               Template.meta_category, Template.meta_params, MetaTemplate.status, Recipient.last_call_at,
               Recipient.pair_backoff_until, Recipient.last_inbound_at, Recipient.opted_out_at,
               # drawn here so that the claim's write, which commits, need not return it
               func.nextval(func.pg_get_serial_sequence(Attempt.__tablename__, "id")))
        .select_from(SenderState)
        .join(MessageLog, true())
        .outerjoin(Template, Template.key == MessageLog.template)
        .outerjoin(MetaTemplate, and_(MetaTemplate.name == Template.meta_name,
                                      MetaTemplate.language == Template.meta_language))
        .join(Recipient, Recipient.phone == MessageLog.recipient)
        .where(SenderState.namespace == bindparam("namespace"), SenderState.sender == bindparam("sender"),
               MessageLog.id == bindparam("log_id"))
        .with_for_update(of=[SenderState, MessageLog, Recipient])
    )


@cache
def _first_contact() -> Insert:
    """The message's recipient gets a row (no-op if the message is gone or the row exists)."""
    message = select(MessageLog.recipient).where(MessageLog.id == bindparam("log_id"))
    return (insert(Recipient).from_select([Recipient.phone], message)
            .on_conflict_do_nothing(index_elements=[Recipient.phone]))


@cache
def _state_lock() -> Select[Any]:
    return (select(*_STATE_COLUMNS, func.clock_timestamp())
            .where(SenderState.namespace == bindparam("namespace"), SenderState.sender == bindparam("sender"))
            .with_for_update(of=SenderState))


def _copy_verdict(row: MessageRow | None, command: SendCommand) -> Stale | bool:
    """Stale, or whether the copy is a resend of an attempt that died mid-call."""
    if row is None:
        return Stale("no such message")
    if row.status == Status.PENDING and row.attempts == command.attempt:
        return True
    if row.status in (Status.QUEUED, Status.FAILED) and row.attempts == command.attempt - 1:
        return False
    return Stale(f"attempt {command.attempt} of a {row.status} message with {row.attempts} attempts")


def _claimant_still_working(session: Session, row: MessageRow, sender_id: str, in_flight: Callable[[int], bool],
                            now: datetime) -> bool:
    """Whether the process that marked this row ``pending`` may still be calling or recording."""
    if row.claimed_by is None:
        return False
    if row.claimed_by == sender_id:
        return in_flight(row.id)
    return liveness.is_alive(session, row.claimed_by, now)


PAUSED = "paused"  # the outcome of an attempt that paused its sender (a quality code)
OUTCOME_UNKNOWN = "outcome_unknown"
OUTCOME_UNKNOWN_REASON = ("the sender process died during the call: WhatsApp may have delivered it. Check with the "
                          "member before `wanotify dead replay`, which sends it again")

# A sender stores its call's planned start when it claims the slot and its actual start when it
# records the outcome. A sender killed in between started after the planned time: by its thread
# hand-offs, and on a loaded machine by tens of milliseconds more (a 1 s pool number's calls came
# 2.3 ms inside the gap across a takeover in CI with 50 ms here). A takeover follows a lease that
# lapsed for seconds, so a successor keeping half a second more costs nothing.
TAKEOVER_MARGIN = timedelta(seconds=0.5)


def _external_wait(state: StateRow, now: datetime, gap: float, sender_id: str) -> float:
    """The rest of the gap after another sender's last call (a restart or a takeover), on the
    database clock; our own calls are paced by our monotonic clock, which is more precise."""
    if state.sender_id == sender_id or state.last_call_at is None:
        return 0.0
    return max(0.0, (state.last_call_at + timedelta(seconds=gap) + TAKEOVER_MARGIN - now).total_seconds())


def note_call_started(session: Session, namespace: str, sender_id: str, seconds_ago: float,
                      sender: str = DEFAULT_SENDER) -> None:
    """Replace the planned start of our last call by its actual start, on the database clock.

    ``clock_timestamp() - seconds_ago`` is never earlier than the real start: the statement
    runs after the moment ``seconds_ago`` was measured."""
    session.execute(
        update(SenderState)
        .where(SenderState.namespace == namespace, SenderState.sender == sender, SenderState.sender_id == sender_id)
        .values(last_call_at=func.greatest(SenderState.last_call_at,
                                           func.clock_timestamp() - timedelta(seconds=seconds_ago)))
    )


def clean(text: str | None, limit: int) -> str | None:
    """A text PostgreSQL will store: no NUL characters, at most ``limit`` characters."""
    return None if text is None else text.replace("\x00", "")[:limit]


ERROR_CHARS = 2000  # an error text in the log row and the attempt history
CODE_CHARS = 40  # the error_code columns
HELD_CHARS = 20  # the held_reason column (a short reason code)
PROVIDER_ID_CHARS = 200  # the provider_message_id column


def record_sent(session: Session, command: SendCommand, attempt_id: int, provider_message_id: str | None,
                sent_as: str | None = None) -> None:
    session.connection().execute(_mark_sent(), _sent_params(command.log_id, provider_message_id, sent_as))
    _finish_attempt(session, attempt_id, "sent", None, None)


@cache
def _mark_sent() -> Update:
    """The message's row once a call for it went through (``_sent_params`` binds it)."""
    now = func.now()
    return update(MessageLog).where(MessageLog.id == bindparam("sent_log_id")).values(
        status=Status.SENT, provider_message_id=bindparam("sent_provider_message_id"), sent_at=now, updated_at=now,
        last_error=None, error_code=None, next_attempt_at=None,
        sent_as=func.coalesce(bindparam("sent_form"), MessageLog.sent_as))


def _sent_params(log_id: int, provider_message_id: str | None, sent_as: str | None) -> dict[str, Any]:
    return {"sent_log_id": log_id, "sent_provider_message_id": clean(provider_message_id, PROVIDER_ID_CHARS),
            "sent_form": sent_as or None}


@dataclass(frozen=True)
class PlainSend:
    """A call that went through on the first try of its form (no template after a refused text):
    everything its record needs, written by ``record_plain_send`` in one statement."""

    log_id: int
    attempt_id: int
    provider_message_id: str | None
    sent_as: str
    namespace: str
    sender: str
    sender_id: str
    recipient: str
    started_ago: float  # seconds since the call started, measured just before the statement
    gate_parts: StartedParts | None  # the gate's part of the record (``Gate.started_parts``), if it has one


def record_plain_send(connection: Connection, sent: PlainSend) -> None:
    """What ``note_call_started``, the gate's ``started`` and ``delivered`` and ``record_sent``
    do, as one statement: PostgreSQL runs it atomically on an autocommit connection, so the
    success of the common call costs one round trip instead of nine. Every part reads the rows
    as they were before it (one snapshot), which is what the separate statements relied on."""
    connection.execute(_plain_send(sent.gate_parts), _sent_params(sent.log_id, sent.provider_message_id, sent.sent_as) | {
        "sent_started_ago": timedelta(seconds=sent.started_ago), "sent_namespace": sent.namespace,
        "sent_sender": sent.sender, "sent_sender_id": sent.sender_id, "sent_recipient": sent.recipient,
        "sent_attempt_id": sent.attempt_id})


@cache
def _plain_send(gate_parts: StartedParts | None) -> Update:
    started_ago = bindparam("sent_started_ago", type_=Interval)
    started = select((func.clock_timestamp() - started_ago).label("at")).cte("started")
    at = select(started.c.at).scalar_subquery()
    state = (update(SenderState)
             .where(SenderState.namespace == bindparam("sent_namespace"), SenderState.sender == bindparam("sent_sender"),
                    SenderState.sender_id == bindparam("sent_sender_id"))
             .values(last_call_at=func.greatest(SenderState.last_call_at, at)).cte("state"))
    parts = [started, state]
    parts += [statement.cte(f"gate_{i}") for i, statement in enumerate(gate_parts(at) if gate_parts else [])]
    parts.append(update(Attempt).where(Attempt.id == bindparam("sent_attempt_id"))
                 .values(finished_at=func.now(), outcome="sent", error=None, error_code=None).cte("attempt"))
    return _mark_sent().add_cte(*parts)


def record_failure(session: Session, command: SendCommand, attempt_id: int, status: Status, error: str,
                   code: str | None, retry_in: float | None, sent_as: str | None = None) -> None:
    """``failed`` (with the time of the next try, if one is scheduled), ``dead`` or ``cancelled``."""
    next_at = func.now() + timedelta(seconds=retry_in) if retry_in is not None else None
    error, code = clean(error, ERROR_CHARS) or "", clean(code, CODE_CHARS)
    session.execute(
        update(MessageLog).where(MessageLog.id == command.log_id).values(
            status=status, last_error=error, error_code=code, next_attempt_at=next_at, updated_at=func.now(),
            **({"sent_as": sent_as} if sent_as else {}))
    )
    _finish_attempt(session, attempt_id, status.value, error, code)


def record_text_refused(session: Session, command: SendCommand, attempt_id: int, error: PermanentError,
                        template_started_ago: float) -> int:
    """Meta refused the text (131047) and the template went in the same attempt: the claimed
    attempt row records the text's refusal, a new row the template call; returns the new id."""
    text, code = clean(str(error), ERROR_CHARS), clean(error.code, CODE_CHARS)
    _finish_attempt(session, attempt_id, "text_refused", text, code)
    attempt = Attempt(log_id=command.log_id, attempt=command.attempt,
                      started_at=func.clock_timestamp() - timedelta(seconds=template_started_ago))
    session.add(attempt)
    session.flush()
    return attempt.id


def record_consequences(session: Session, recipient: str, template: TemplateCall | None, opted_out: bool,
                        template_status: str | None) -> None:
    """What an error says beyond the message: the recipient opted out (131050), or Meta changed
    the template's status (132015 paused, 132016 disabled), so the next messages know it first."""
    if opted_out:
        recipients.opt_out(session, recipient, "meta_131050")
    if template is not None and template_status is not None:
        stmt = insert(MetaTemplate).values(name=template.name, language=template.language, status=template_status)
        session.execute(stmt.on_conflict_do_update(
            index_elements=[MetaTemplate.name, MetaTemplate.language],
            set_={"status": template_status, "updated_at": func.now()}))


def record_pause(session: Session, command: SendCommand, attempt_id: int, namespace: str, seconds: float,
                 error: str, code: str | None, sender: str = DEFAULT_SENDER, *, park: bool = False,
                 sent_as: str | None = None) -> None:
    """Pause this one sender (number), not the pool; the message goes back to ``queued``, attempt
    not spent, or is parked ``dead`` when ``park``."""
    session.execute(
        update(SenderState).where(SenderState.namespace == namespace, SenderState.sender == sender).values(
            paused_until=func.now() + timedelta(seconds=seconds), pause_reason=clean(error, ERROR_CHARS) or "")
    )
    if park:
        record_failure(session, command, attempt_id, Status.DEAD, error, code, None, sent_as)
        return
    error, code = clean(error, ERROR_CHARS) or "", clean(code, CODE_CHARS)
    _back_to_queued(session, command, error, code)
    _finish_attempt(session, attempt_id, PAUSED, error, code)


def pauses_caused(session: Session, log_id: int, attempt_id: int) -> int:
    """How many quality pauses the message caused before the attempt ``attempt_id``."""
    return session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.log_id == log_id, Attempt.outcome == PAUSED, Attempt.id != attempt_id)) or 0


def record_deferred(session: Session, command: SendCommand, attempt_id: int, seconds: float, reason: str,
                    error: str, code: str | None) -> None:
    """The provider said "not now" about the recipient (131056): the message goes back to
    ``queued``, held ``seconds`` with ``reason``, attempt not spent."""
    error, code = clean(error, ERROR_CHARS) or "", clean(code, CODE_CHARS)
    _back_to_queued(session, command, error, code,
                    held_until=func.now() + timedelta(seconds=seconds), held_reason=clean(reason, HELD_CHARS))
    _finish_attempt(session, attempt_id, "deferred", error, code)


def _back_to_queued(session: Session, command: SendCommand, error: str, code: str | None, **more: object) -> None:
    session.execute(
        update(MessageLog).where(MessageLog.id == command.log_id).values(
            status=Status.QUEUED, attempts=command.attempt - 1, last_error=error, error_code=code,
            updated_at=func.now(), **more)
    )


def mark_dead(session: Session, log_id: int, error: str, code: str) -> None:
    """Park a row outside the normal flow (a copy that kept failing unexpectedly)."""
    error = clean(error, ERROR_CHARS) or ""
    session.execute(
        update(MessageLog).where(MessageLog.id == log_id, MessageLog.status.in_([Status.QUEUED, Status.FAILED, Status.PENDING]))
        .values(status=Status.DEAD, last_error=error, error_code=code, updated_at=func.now())
    )


def _finish_attempt(session: Session, attempt_id: int, outcome: str, error: str | None, code: str | None) -> None:
    session.execute(
        update(Attempt).where(Attempt.id == attempt_id).values(
            finished_at=func.now(), outcome=outcome, error=clean(error, ERROR_CHARS),
            error_code=clean(code, CODE_CHARS))
    )
