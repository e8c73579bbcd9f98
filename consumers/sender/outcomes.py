"""What follows a failed call or a broken delivery, recorded first and returned as a
settlement (``settle.py``) for the lane to carry out: a retry later through a retry queue, a
dead letter, a cancellation, a pause of the sender, or a deferral of the recipient.

The log row is committed before the broker hears of the outcome, so a crash in between
leaves a row that says what should happen; the recovery sweep and the copy check make the
broker side safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.providers.classify import RecipientOptedOut, TemplateRefused
from wanotify.consumers.sender import store
from wanotify.consumers.sender.choice import Refusal
from wanotify.consumers.sender.gate import Gate
from wanotify.consumers.sender.policy import Cancel, Dead, Decision, PairRate, Pause, Retry, bounded, decide, pause_code
from wanotify.consumers.sender.settle import Ack, Defer, Keep, Park, Requeue, RetryLater, Settlement
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Status
from wanotify.shared.db.retry import record_durably
from wanotify.shared.errors import PermanentError, TransientError
from wanotify.shared.messages import SendCommand
from wanotify.shared.meta_templates import TemplateCall
from wanotify.shared.metrics import Metrics

log = logging.getLogger(__name__)

POISON_AFTER = 3  # unexpected errors on the same copy before it is parked instead of retried


@dataclass(frozen=True)
class CallRecord:
    """How the call that was made is recorded."""

    # Run first in the record's transaction: notes when the call started; returns its attempt row.
    open: Callable[[Session], int]
    sent_as: str  # "text" or "template"
    template: TemplateCall | None = None  # the approved template sent, if one was
    single: SingleCall | None = None  # set when one call was made: its success is one statement


@dataclass(frozen=True)
class SingleCall:
    """The usual step: one call, not split into a refused text and a template."""

    attempt_id: int
    sender: str
    started: float  # time.monotonic() at the call's start


class Outcomes:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session],
                 gate: Gate | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.gate = gate
        self._unexpected: dict[bytes, int] = {}  # copy body -> unexpected errors so far

    async def failed(self, sender: str, command: SendCommand, claim: store.Go, error: TransientError | PermanentError,
                     call: CallRecord) -> Settlement:
        """Decide what a failed call of ``sender`` leads to and record it (with what the error
        implies, in the same transaction); returns how to settle the delivery."""
        decision = decide(error, command.retries_used, claim.runtime, self.settings.retry_backoff,
                          self.settings.quality_pause_seconds)
        text, code = str(error), error.code
        log.warning("call for %s failed (%s): %s -> %s", command.message_id, code, text, type(decision).__name__,
                    extra=command.log_fields() | {"error_code": code, "sender": sender})
        self.metrics.messages_failed.labels("permanent" if isinstance(error, PermanentError) else "retryable").inc()
        deferred: list[float] = []
        decision = await record_durably([
            lambda: self._record(sender, decision, command, claim, error, text, code, call, deferred),
            # the plainest record: the provider's text may be what the database refuses
            lambda: self._record(sender, decision, command, claim, error, "(the error text could not be stored)",
                                 "unstorable", call, deferred),
        ], f"the failure of {command.message_id}")
        return self._settlement(sender, decision, text, deferred, code)

    def _record(self, sender: str, decision: Decision, command: SendCommand, claim: store.Go, error: Exception,
                text: str, code: str | None, call: CallRecord, deferred: list[float]) -> Decision:
        """Record the failure as ``decision`` says; returns the decision as recorded (a pause may
        park the message, by what the database knows of its earlier pauses)."""
        with transaction(self.sessions) as session:
            attempt_id = call.open(session)
            store.record_consequences(session, claim.recipient, call.template, isinstance(error, RecipientOptedOut),
                                      error.status if isinstance(error, TemplateRefused) else None)
            if isinstance(decision, Pause):
                decision = bounded(decision, store.pauses_caused(session, command.log_id, attempt_id), claim.runtime)
                store.record_pause(session, command, attempt_id, self.settings.namespace, decision.seconds, text, code,
                                   sender=sender, park=decision.park, sent_as=call.sent_as)
                return decision
            if isinstance(decision, PairRate):
                seconds = self._pair_rate_seconds(session, claim.recipient)
                store.record_deferred(session, command, attempt_id, seconds, "pair_rate", text, code)
                deferred[:] = [seconds]
                return decision
            status, retry_in = Status.FAILED, None
            if isinstance(decision, Dead | Cancel):
                status = Status.DEAD if isinstance(decision, Dead) else Status.CANCELLED
            elif isinstance(decision, Retry):
                retry_in = decision.delay_seconds
            store.record_failure(session, command, attempt_id, status, text, code, retry_in, call.sent_as)
            return decision

    def _pair_rate_seconds(self, session: Session, recipient: str) -> float:
        if self.gate is None:  # no budget: the plain interval of the Cloud API's pair rate
            return max(self.settings.recipient_interval_seconds, 1.0)
        now = session.execute(select(func.clock_timestamp())).scalar_one()
        return self.gate.pair_rate_hit(session, recipient, now)

    def _settlement(self, sender: str, decision: Decision, text: str, deferred: list[float],
                    code: str | None) -> Settlement:
        if isinstance(decision, Pause):
            self.metrics.sender_pauses.labels(pause_code(code), sender).inc()
            self.metrics.show_pause(sender, "quality")
            if decision.park:
                return Park("quality_limit", text)
            return Keep()  # held until the pause ends: no requeue, no redelivery counted
        if isinstance(decision, PairRate):
            return Defer(deferred[0] if deferred else 1.0, "pair_rate")
        if isinstance(decision, Retry):
            return RetryLater(decision.delay_seconds)
        if isinstance(decision, Dead):
            return Park(decision.reason, text)
        return Ack()

    def refused(self, command: SendCommand, refusal: Refusal) -> Settlement:
        """A message refused before any call (its row already says so): park a dead one."""
        log.warning("not sending %s (%s): %s", command.message_id, refusal.code, refusal.reason,
                    extra=command.log_fields() | {"error_code": refusal.code})
        if refusal.status == Status.DEAD:
            return Park(refusal.code, refusal.reason)
        return Ack()

    def undecodable(self, text: str) -> Settlement:
        log.error("parking an undecodable send-queue message: %s", text)
        return Park("bad_command", text, row_recorded=False)

    def succeeded(self, body: bytes) -> None:
        self._unexpected.pop(body, None)

    async def unexpected(self, body: bytes, exc: Exception) -> Settlement:
        """A bug or data the database refuses: retry the copy a few times, then park it, so one
        bad copy can neither crash the sender nor spin at the head of the queue."""
        count = self._unexpected[body] = self._unexpected.get(body, 0) + 1
        if count < POISON_AFTER:
            log.exception("unexpected error handling a delivery (%d of %d); requeueing it", count, POISON_AFTER,
                          exc_info=exc)
            await asyncio.sleep(1.0)
            return Requeue()
        log.exception("parking a delivery that failed unexpectedly %d times", count, exc_info=exc)
        self._unexpected.pop(body, None)
        detail = f"{type(exc).__name__}: {exc}"[:1000]
        await asyncio.to_thread(self._mark_dead_if_possible, body, detail)
        return Park("internal_error", detail, row_recorded=False)

    def _mark_dead_if_possible(self, body: bytes, error: str) -> None:
        """Best effort, so `wanotify dead list` shows it too; the parked copy is what counts."""
        try:
            with transaction(self.sessions) as session:
                store.mark_dead(session, SendCommand.decode(body).log_id, error, "internal_error")
        except Exception as exc:  # noqa: BLE001
            log.warning("could not mark the parked message dead in the log: %s", exc)
