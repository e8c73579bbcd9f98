"""The sender: one delivery at a time (prefetch 1, single active consumer), paced by the gap.

Choosing the next message when the gap ends, not when the previous call returns: a delivery
that arrives while the gap is still running is held and then handed back to the broker
(requeued) a moment before the gap ends. The broker then delivers the head of the priority
queue, so a high-priority message that arrived during the gap goes next, and FIFO order within
a priority is kept (a requeued message returns to its place). The same mechanism covers a
takeover, a restart, a changed gap and a quality pause: nothing holds a delivery for long, so
the broker's consumer timeout never fires.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.orm import Session, sessionmaker

from consumers.providers import OutgoingMessage, Provider, SendResult
from consumers.sender import store
from consumers.sender.outcomes import Outcomes, settle
from consumers.sender.pacing import Pacer
from shared.broker import SendQueuePublisher, confirmed_channel, connect
from shared.config import Settings
from shared.db.copies import failed_copies
from shared.db.engine import transaction
from shared.db.retry import Stopped, run_db
from shared.errors import PermanentError, TransientError
from shared.messages import SendCommand
from shared.metrics import Metrics
from shared.phone import mask_phone
from shared.runtime import RuntimeSettings, load
from shared.topology import Topology

log = logging.getLogger(__name__)

LEAD_SECONDS = 0.025  # hand a held delivery back this long before the gap ends
MAX_HOLD_SECONDS = 30.0  # never keep a delivery longer than this (consumer timeout, takeover)
RUNTIME_REFRESH_SECONDS = 1.0  # `wanotify settings set` reaches a running sender within this


@dataclass
class Step:
    """What one claim-and-call step did."""

    claim: store.Claim
    since_previous: float | None = None  # since the start of this sender's previous call
    duration: float = 0.0
    outcome: SendResult | Exception | None = None  # None: no call was made
    recorded: bool = False  # a success already committed


class Sender:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session], provider: Provider,
                 *, lead: float = LEAD_SECONDS, max_hold: float = MAX_HOLD_SECONDS) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.provider = provider
        self.topology = Topology(settings.namespace)
        self.sender_id = uuid.uuid4().hex
        self.pacer = Pacer()
        self.lead = lead
        self.max_hold = max_hold
        self._gap = settings.send_gap_seconds
        self._stop = asyncio.Event()
        self._publisher: SendQueuePublisher | None = None
        self._outcomes: Outcomes | None = None
        self._runtime_cache: tuple[float, RuntimeSettings] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; a call in flight is finished, recorded and acked first."""
        self._stop = stop
        connection = await connect(self.settings.amqp_url, f"wanotify-sender-{self.sender_id[:8]}")
        try:
            channel = await confirmed_channel(connection, prefetch=1)
            self._publisher = SendQueuePublisher(channel, self.topology)
            await self._publisher.declare()
            self._outcomes = Outcomes(self.settings, self.metrics, self.sessions, self._publisher)
            queue = await channel.get_queue(self.topology.send_queue)
            self._idle = asyncio.Event()
            self._idle.set()
            tag = await queue.consume(self._on_delivery)
            log.info("sender %s consuming %s", self.sender_id[:8], self.topology.send_queue)
            sweeper = asyncio.create_task(self._sweep_forever())
            await stop.wait()
            sweeper.cancel()
            await queue.cancel(tag)
            await self._idle.wait()
        finally:
            await connection.close()

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        self._idle.clear()
        assert self._outcomes is not None
        try:
            await self._handle(message)
            self._outcomes.succeeded(message)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never crash on one delivery
            await self._outcomes.unexpected(message, exc)
        finally:
            self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            command = SendCommand.decode(message.body)
        except PermanentError as exc:
            assert self._outcomes is not None
            await self._outcomes.undecodable(message, str(exc))
            return
        while True:
            if self._stop.is_set():
                await settle(message.nack(requeue=True))
                return
            # Early delivery: wait until shortly before our own gap ends, then let the broker choose.
            early = self.pacer.remaining(self._gap) - self.lead
            if early > 0:
                await self._hold_and_requeue(message, early)
                return
            try:
                step = await run_db(lambda: self._claim_and_call(command), self._stop)
            except Stopped:
                await settle(message.nack(requeue=True))
                return
            claim = step.claim
            if isinstance(claim, store.Stale):
                log.info("dropping stale copy %s: %s", command.message_id, claim.reason, extra=command.log_fields())
                self.metrics.stale_copies.inc()
                await settle(message.ack())
                return
            if isinstance(claim, store.Wait):
                self.metrics.sender_paused.set(1 if claim.paused else 0)
                if claim.seconds > self.lead:
                    await self._hold_and_requeue(message, claim.seconds - self.lead)
                    return
                await asyncio.sleep(claim.seconds)
                continue
            self.metrics.sender_paused.set(0)
            await self._after_call(message, command, step)
            return

    def _claim(self, command: SendCommand) -> store.Claim:
        with transaction(self.sessions) as session:
            claim = store.claim(session, command, self.settings, self.sender_id, self.pacer.remaining, self.lead,
                                self._runtime)
        if isinstance(claim, store.Go):
            self._gap = claim.runtime.gap_seconds
        return claim

    def _runtime(self, session: Session) -> RuntimeSettings:
        """The runtime settings, read from the database at most once a second."""
        now = time.monotonic()
        if self._runtime_cache is None or now - self._runtime_cache[0] > RUNTIME_REFRESH_SECONDS:
            self._runtime_cache = (now, load(session, self.settings))
        return self._runtime_cache[1]

    async def _sweep_forever(self) -> None:
        """The safety net under delayed retry: republish retries whose copy never came back."""
        while True:
            await asyncio.sleep(self.settings.retry_sweep_seconds)
            try:
                copies = await asyncio.to_thread(self._overdue_copies)
                for command in copies:
                    assert self._publisher is not None
                    await self._publisher.publish_send(command)
                if copies:
                    log.warning("republished %d overdue retries", len(copies))
            except Exception:
                log.exception("recovery sweep failed")

    def _overdue_copies(self) -> list[SendCommand]:
        with transaction(self.sessions) as session:
            if not load(session, self.settings).auto_retry_enabled:
                return []
            # A scheduled retry later than one sweep interval is presumed lost.
            return failed_copies(session, overdue_seconds=self.settings.retry_sweep_seconds)

    async def _hold_and_requeue(self, message: AbstractIncomingMessage, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), min(seconds, self.max_hold))
        except TimeoutError:
            pass
        await settle(message.nack(requeue=True))

    def _claim_and_call(self, command: SendCommand) -> Step:
        """Claim the slot, wait for it, call, and record a success: one worker-thread step.

        An exception can only escape before the call is made (while claiming), so the caller
        may retry the whole step when the database is down; after the call, a failure to record
        is handed back instead (``recorded`` false) and retried without calling again.
        """
        claim = self._claim(command)
        if not isinstance(claim, store.Go):
            return Step(claim)
        if claim.ambiguous:
            # Policy: a call whose outcome was lost in a crash is made again (at least once).
            log.warning("resending %s: the previous try of this attempt died mid-call", command.message_id,
                        extra=command.log_fields())
            self.metrics.ambiguous_calls.inc()
        outgoing = OutgoingMessage(command.log_id, claim.recipient, claim.body, claim.template,
                                   self.settings.default_language)
        since_previous = self.pacer.wait_for_slot(claim.runtime.gap_seconds, time.monotonic() + claim.external_wait)
        started = time.monotonic()
        try:
            outcome: SendResult | Exception = self.provider.send(outgoing)
        except Exception as exc:  # noqa: BLE001 - sorted by class by the caller
            outcome = exc
        self.pacer.mark_end()
        step = Step(claim, since_previous, time.monotonic() - started, outcome)
        if isinstance(outcome, SendResult):
            try:
                self._record(store.record_sent, command, claim.attempt_id, outcome.provider_message_id)
                step.recorded = True
            except Exception as exc:  # noqa: BLE001 - recorded from the event loop, with retries
                log.warning("recording %s failed (%s); retrying", command.message_id, type(exc).__name__)
        return step

    async def _after_call(self, message: AbstractIncomingMessage, command: SendCommand, step: Step) -> None:
        claim, outcome = step.claim, step.outcome
        assert isinstance(claim, store.Go) and outcome is not None
        self.metrics.last_call.set(time.time())
        if step.since_previous is not None:
            self.metrics.send_gap.observe(step.since_previous)
        self.metrics.provider_call_duration.labels("error" if isinstance(outcome, Exception) else "ok").observe(
            step.duration)
        if isinstance(outcome, Exception):
            assert self._outcomes is not None
            await run_db(self._note_start)  # the outcome itself is recorded by Outcomes
            await self._outcomes.failed(message, command, claim, _as_send_error(outcome))
            return
        if not step.recorded:
            await run_db(lambda: self._record(store.record_sent, command, claim.attempt_id, outcome.provider_message_id))
        log.info("sent %s to %s", command.message_id, mask_phone(claim.recipient),
                 extra=command.log_fields() | {"provider_message_id": outcome.provider_message_id})
        self.metrics.messages_sent.labels(command.priority.value).inc()
        await settle(message.ack())

    def _record(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        """Record an outcome, and in the same transaction when our last call really started."""
        with transaction(self.sessions) as session:
            fn(session, *args)
            self._note_call_started(session)

    def _note_start(self) -> None:
        with transaction(self.sessions) as session:
            self._note_call_started(session)

    def _note_call_started(self, session: Session) -> None:
        started = self.pacer.last_start
        if started is not None:
            store.note_call_started(session, self.settings.namespace, self.sender_id, time.monotonic() - started)

def _as_send_error(exc: Exception) -> TransientError | PermanentError:
    if isinstance(exc, TransientError | PermanentError):
        return exc
    # A bug or an unexpected library error: retrying is the safe default, and it is logged.
    log.error("provider raised %s; treating it as transient", type(exc).__name__, exc_info=exc)
    return TransientError(f"{type(exc).__name__}: {exc}", code="internal")
