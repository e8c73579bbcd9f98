"""What follows a failed call or a broken delivery: recorded first, then retried later
through a retry queue, parked in the dead-letter queue, or held back by a pause.

The log row is committed before the broker hears of the outcome, so a crash in between
leaves a row that says what should happen; the recovery sweep and the copy check make the
broker side safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.providers.classify import RecipientOptedOut, TemplateRefused
from wanotify.consumers.sender import store
from wanotify.consumers.sender.choice import Refusal
from wanotify.consumers.sender.policy import Cancel, Dead, Decision, Pause, Retry, decide
from wanotify.shared.broker import SendQueuePublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Status
from wanotify.shared.db.retry import record_durably
from wanotify.shared.errors import PermanentError, TransientError
from wanotify.shared.messages import ATTEMPT_HEADER, DETAIL_HEADER, REASON_HEADER, SendCommand
from wanotify.shared.meta_templates import TemplateCall
from wanotify.shared.metrics import Metrics
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)

POISON_AFTER = 3  # unexpected errors on the same copy before it is parked instead of retried


@dataclass(frozen=True)
class CallRecord:
    """How the call that was made is recorded."""

    # Run first in the record's transaction: notes when the call started; returns its attempt row.
    open: Callable[[Session], int]
    sent_as: str  # "text" or "template"
    template: TemplateCall | None = None  # the approved template sent, if one was


class Outcomes:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session],
                 publisher: SendQueuePublisher) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.publisher = publisher
        self.dead_queue = Topology.of(settings).send_dead_queue
        self._unexpected: dict[bytes, int] = {}  # copy body -> unexpected errors so far

    async def failed(self, message: AbstractIncomingMessage, command: SendCommand, claim: store.Go,
                     error: TransientError | PermanentError, call: CallRecord) -> None:
        """Decide what a failed call leads to, record it (with what the error implies, in the same
        transaction), then retry, park, cancel or pause."""
        decision = decide(error, command.retries_used, claim.runtime, self.settings.retry_backoff,
                          self.settings.quality_pause_seconds)
        text, code = str(error), error.code
        log.warning("call for %s failed (%s): %s -> %s", command.message_id, code, text, type(decision).__name__,
                    extra=command.log_fields() | {"error_code": code})
        self.metrics.messages_failed.labels("permanent" if isinstance(error, PermanentError) else "retryable").inc()
        await record_durably([
            lambda: self._record(decision, command, claim, error, text, code, call),
            # the plainest record: the provider's text may be what the database refuses
            lambda: self._record(decision, command, claim, error, "(the error text could not be stored)",
                                 "unstorable", call),
        ], f"the failure of {command.message_id}")
        await self._follow_up(message, command, decision, text)

    def _record(self, decision: Decision, command: SendCommand, claim: store.Go, error: Exception, text: str,
                code: str | None, call: CallRecord) -> None:
        with transaction(self.sessions) as session:
            attempt_id = call.open(session)
            store.record_consequences(session, claim.recipient, call.template, isinstance(error, RecipientOptedOut),
                                      error.status if isinstance(error, TemplateRefused) else None)
            if isinstance(decision, Pause):
                store.record_pause(session, command, attempt_id, self.settings.namespace, decision.seconds, text, code)
                return
            status, retry_in = Status.FAILED, None
            if isinstance(decision, Dead | Cancel):
                status = Status.DEAD if isinstance(decision, Dead) else Status.CANCELLED
            elif isinstance(decision, Retry):
                retry_in = decision.delay_seconds
            store.record_failure(session, command, attempt_id, status, text, code, retry_in, call.sent_as)

    async def _follow_up(self, message: AbstractIncomingMessage, command: SendCommand, decision: Decision,
                         text: str) -> None:
        if isinstance(decision, Pause):
            self.metrics.sender_pauses.labels("quality").inc()
            self.metrics.sender_paused.set(1)
            await settle(message.nack(requeue=True))
            return
        try:
            if isinstance(decision, Retry):
                await self.publisher.publish_retry(command.next_attempt(), decision.delay_seconds)
                self.metrics.retries.inc()
            elif isinstance(decision, Dead):
                headers = {REASON_HEADER: decision.reason, DETAIL_HEADER: text[:1000], ATTEMPT_HEADER: command.attempt}
                await self._park(command.encode(), headers, command.message_id, decision.reason)
        except Exception:
            # The row already says failed/dead; the recovery sweep republishes overdue retries.
            log.exception("could not publish the follow-up for %s", command.message_id, extra=command.log_fields())
        await settle(message.ack())

    async def refused(self, message: AbstractIncomingMessage, command: SendCommand, refusal: Refusal) -> None:
        """A message refused before any call (its row already says so): park a dead one, then ack."""
        log.warning("not sending %s (%s): %s", command.message_id, refusal.code, refusal.reason,
                    extra=command.log_fields() | {"error_code": refusal.code})
        if refusal.status == Status.DEAD:
            headers = {REASON_HEADER: refusal.code, DETAIL_HEADER: refusal.reason[:1000],
                       ATTEMPT_HEADER: command.attempt}
            try:
                await self._park(command.encode(), headers, command.message_id, refusal.code)
            except Exception:  # the row says dead: `wanotify dead list` and replay work from it
                log.exception("could not park %s", command.message_id, extra=command.log_fields())
        await settle(message.ack())

    async def undecodable(self, message: AbstractIncomingMessage, text: str) -> None:
        log.error("parking an undecodable send-queue message: %s", text)
        headers = {REASON_HEADER: "bad_command", DETAIL_HEADER: text[:1000]}
        await self._park(message.body, headers, message.message_id, "bad_command")
        await settle(message.ack())

    def succeeded(self, message: AbstractIncomingMessage) -> None:
        self._unexpected.pop(message.body, None)

    async def unexpected(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        """A bug or data the database refuses: retry the copy a few times, then park it, so one
        bad copy can neither crash the sender nor spin at the head of the queue."""
        count = self._unexpected[message.body] = self._unexpected.get(message.body, 0) + 1
        if count < POISON_AFTER:
            log.exception("unexpected error handling a delivery (%d of %d); requeueing it", count, POISON_AFTER)
            await asyncio.sleep(1.0)
            await settle(message.nack(requeue=True))
            return
        log.exception("parking a delivery that failed unexpectedly %d times", count)
        self._unexpected.pop(message.body, None)
        detail = f"{type(exc).__name__}: {exc}"[:1000]
        try:
            await self._park(message.body, {REASON_HEADER: "internal_error", DETAIL_HEADER: detail},
                             message.message_id, "internal_error")
        except Exception:  # noqa: BLE001 - cannot park it now: leave it to the broker
            await settle(message.nack(requeue=True))
            return
        await settle(message.ack())
        await asyncio.to_thread(self._mark_dead_if_possible, message.body, detail)

    async def _park(self, body: bytes, headers: dict[str, Any], message_id: str | None, reason: str) -> None:
        await self.publisher.publish_dead(self.dead_queue, body, headers, message_id)
        self.metrics.messages_dead.labels(reason).inc()

    def _mark_dead_if_possible(self, body: bytes, error: str) -> None:
        """Best effort, so `wanotify dead list` shows it too; the parked copy is what counts."""
        try:
            with transaction(self.sessions) as session:
                store.mark_dead(session, SendCommand.decode(body).log_id, error, "internal_error")
        except Exception as exc:  # noqa: BLE001
            log.warning("could not mark the parked message dead in the log: %s", exc)


async def settle(action: Awaitable[Any]) -> None:
    """Ack/nack; if the channel died meanwhile the broker redelivers, and the copy check dedupes."""
    try:
        await action
    except Exception as exc:  # noqa: BLE001
        log.warning("could not settle a delivery (%s); it will be redelivered", exc)
