"""The sender: one delivery at a time (prefetch 1, single active consumer), paced by the gap.

Choosing the next message when the gap ends, not when the previous call returns: a delivery
that arrives while the gap is still running is held and then handed back to the broker
(requeued) a moment before the gap ends. The broker then delivers the head of the priority
queue, so a high-priority message that arrived during the gap goes next, and FIFO order within
a priority is kept (a requeued message returns to its place). The same mechanism covers a
takeover, a restart, a changed gap and a quality pause: nothing holds a delivery longer than
``MAX_HOLD_SECONDS``, so the broker's consumer timeout never fires, and a gap lowered with
``wanotify settings set`` reaches a held delivery within about a second.

Once a call is made, its outcome is recorded durably (``record_durably``): the record is
retried, never the call.

On the Cloud API the claim also chooses the message's form (``choice.py``); ``calls.py`` makes
the call, and resends the text as the mapped template when Meta answers 131047.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter

from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.providers import Provider
from wanotify.consumers.sender import liveness, store
from wanotify.consumers.sender.calls import Caller, Step, call_record
from wanotify.consumers.sender.choice import Rules
from wanotify.consumers.sender.outcomes import CallRecord, Outcomes, settle
from wanotify.consumers.sender.pacing import Pacer
from wanotify.shared.broker import SendQueuePublisher, confirmed_channel, connect
from wanotify.shared.config import Settings
from wanotify.shared.db.copies import ScheduledCopy, failed_copies, forget_schedule
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.retry import Stopped, record_durably, run_db
from wanotify.shared.errors import PermanentError, TransientError
from wanotify.shared.messages import SendCommand
from wanotify.shared.metrics import Metrics
from wanotify.shared.phone import mask_phone
from wanotify.shared.runtime import RuntimeSettings, load
from wanotify.shared.topology import Topology

log = logging.getLogger(__name__)

LEAD_SECONDS = 0.025  # hand a held delivery back this long before the gap ends
MAX_HOLD_SECONDS = 1.0  # hand a held delivery back at least this often, to look at it afresh
RUNTIME_REFRESH_SECONDS = 1.0  # `wanotify settings set` reaches a running sender within this


class Sender:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session], provider: Provider,
                 *, lead: float = LEAD_SECONDS, max_hold: float = MAX_HOLD_SECONDS) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.provider = provider
        self.rules = Rules.of(settings, provider.name)
        self.topology = Topology.of(settings)
        self.sender_id = uuid.uuid4().hex
        self.pacer = Pacer()
        self.caller = Caller(provider, self.pacer, settings.default_language)
        self.lead = lead
        self.max_hold = max_hold
        self._gap = settings.send_gap_seconds
        self._stop = asyncio.Event()
        self._publisher: SendQueuePublisher | None = None
        self._outcomes: Outcomes | None = None
        self._runtime_cache: tuple[float, RuntimeSettings] | None = None
        self._in_flight: Counter[int] = Counter()  # log id -> deliveries of it being handled here
        self._handling: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; a call in flight is finished, recorded and acked first."""
        self._stop = stop
        await run_db(lambda: self._in_transaction(liveness.register), stop)
        connection = await connect(self.settings.amqp_url, f"wanotify-sender-{self.sender_id[:8]}")
        heartbeat = asyncio.create_task(self._heartbeat_forever())
        try:
            channel = await confirmed_channel(connection, prefetch=1)
            self._publisher = SendQueuePublisher(channel, self.topology)
            await self._publisher.declare()
            self._outcomes = Outcomes(self.settings, self.metrics, self.sessions, self._publisher)
            queues = [await channel.get_queue(name) for name in self.topology.send_queues()]
            tags = [await queue.consume(self._on_delivery) for queue in queues]
            log.info("sender %s consuming %s with %s", self.sender_id[:8], self.topology.send_queue,
                     self.settings.whatsapp.describe())
            sweeper = asyncio.create_task(self._sweep_forever())
            await stop.wait()
            sweeper.cancel()
            for queue, tag in zip(queues, tags, strict=True):
                await queue.cancel(tag)
            await self._idle.wait()
        finally:
            heartbeat.cancel()
            await connection.close()
        await self._say_stopped()

    async def _heartbeat_forever(self) -> None:
        """Tell other senders this process is alive, so they never resend what it is sending."""
        while True:
            await asyncio.sleep(liveness.HEARTBEAT_SECONDS)
            try:
                await asyncio.to_thread(self._in_transaction, liveness.beat)
            except Exception as exc:  # noqa: BLE001 - a missed beat only makes us look dead for a while
                log.debug("heartbeat failed: %s", exc)

    async def _say_stopped(self) -> None:
        try:
            await asyncio.to_thread(self._in_transaction, liveness.stopped)
        except Exception as exc:  # noqa: BLE001 - others will notice through the missing heartbeat
            log.debug("could not record the stop: %s", exc)

    def _in_transaction(self, fn) -> None:  # type: ignore[no-untyped-def]
        with transaction(self.sessions) as session:
            fn(session, self.sender_id)

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        # The broker client cancels a channel's consumer tasks when its connection drops. A call
        # may be in progress then: shielded, its handling goes on, records the outcome, and the
        # copy the broker redelivers waits for it (and is dropped as stale) instead of resending.
        task = asyncio.create_task(self._settle_delivery(message))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        await asyncio.shield(task)

    async def _settle_delivery(self, message: AbstractIncomingMessage) -> None:
        self._idle.clear()
        assert self._outcomes is not None
        try:
            await self._handle(message)
            self._outcomes.succeeded(message)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never crash on one delivery
            await self._outcomes.unexpected(message, exc)
        finally:
            if not self._in_flight:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            command = SendCommand.decode(message.body)
        except PermanentError as exc:
            assert self._outcomes is not None
            await self._outcomes.undecodable(message, str(exc))
            return
        self._in_flight[command.log_id] += 1
        try:
            await self._handle_command(message, command)
        finally:
            self._in_flight[command.log_id] -= 1
            if self._in_flight[command.log_id] <= 0:
                del self._in_flight[command.log_id]

    async def _handle_command(self, message: AbstractIncomingMessage, command: SendCommand) -> None:
        await self._refresh_gap()
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
            if isinstance(claim, store.Refused):
                assert self._outcomes is not None
                await self._outcomes.refused(message, command, claim.refusal)
                return
            if isinstance(claim, store.Wait):
                if claim.why == "claimed":
                    log.debug("holding %s: another try of it is still in progress", command.message_id,
                             extra=command.log_fields())
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
                                self._runtime, self._in_flight_elsewhere(command), self.rules)
        if isinstance(claim, store.Go):
            self._gap = claim.runtime.gap_seconds
        return claim

    def _in_flight_elsewhere(self, command: SendCommand):  # type: ignore[no-untyped-def]
        """Whether another delivery of this message is still being handled in this process."""
        return lambda log_id: self._in_flight[log_id] > (1 if log_id == command.log_id else 0)

    async def _refresh_gap(self) -> None:
        """Pick up a changed gap before judging a delivery early (at most one read a second)."""
        cached = self._runtime_cache
        if cached is not None and time.monotonic() - cached[0] <= RUNTIME_REFRESH_SECONDS:
            self._gap = cached[1].gap_seconds
            return
        try:
            self._gap = await asyncio.to_thread(self._current_gap)
        except Exception as exc:  # noqa: BLE001 - the database is down: keep the gap we know
            log.debug("could not refresh the gap: %s", exc)

    def _current_gap(self) -> float:
        with self.sessions() as session:
            return self._runtime(session).gap_seconds

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
                await self.sweep_once()
            except Exception as exc:  # noqa: BLE001 - the rows stay overdue: the next sweep takes them
                log.warning("recovery sweep failed (%s: %s); the next sweep tries again", type(exc).__name__, exc)

    async def sweep_once(self) -> int:
        """Publish a copy of every overdue retry, then forget its schedule; returns how many.

        Publishing first: if it fails, or the process dies before the schedule is forgotten, the
        rows are still overdue and the next sweep publishes them again (a second copy is stale).
        """
        copies = await asyncio.to_thread(self._overdue_copies)
        assert self._publisher is not None
        for copy in copies:
            await self._publisher.publish_send(copy.command)
        if copies:
            await run_db(lambda: self._forget(copies))
            log.warning("republished %d overdue retries", len(copies))
        return len(copies)

    def _overdue_copies(self) -> list[ScheduledCopy]:
        with transaction(self.sessions) as session:
            if not load(session, self.settings).auto_retry_enabled:
                return []
            # A scheduled retry later than one sweep interval is presumed lost.
            return failed_copies(session, overdue_seconds=self.settings.retry_sweep_seconds)

    def _forget(self, copies: list[ScheduledCopy]) -> None:
        with transaction(self.sessions) as session:
            forget_schedule(session, copies)

    async def _hold_and_requeue(self, message: AbstractIncomingMessage, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), min(seconds, self.max_hold))
        except TimeoutError:
            pass
        await settle(message.nack(requeue=True))

    def _claim_and_call(self, command: SendCommand) -> Step:
        """Claim the slot, wait for it, and call: one worker-thread step.

        An exception can only escape before the call is made (while claiming), so the caller
        may retry the whole step when the database is down; the outcome is recorded afterwards.
        """
        claim = self._claim(command)
        if not isinstance(claim, store.Go):
            return Step(claim)
        if claim.ambiguous:
            # Policy: a call whose outcome was lost in a crash is made again (at least once).
            log.warning("resending %s: the previous try of this attempt died mid-call", command.message_id,
                        extra=command.log_fields())
            self.metrics.ambiguous_calls.inc()
        return self.caller.call(command, claim)

    async def _after_call(self, message: AbstractIncomingMessage, command: SendCommand, step: Step) -> None:
        claim, outcome = step.claim, step.outcome
        assert isinstance(claim, store.Go) and outcome is not None
        self.metrics.last_call.set(time.time())
        for gap in (step.since_previous, step.template_gap):
            if gap is not None:
                self.metrics.send_gap.observe(gap)
        self.metrics.provider_call_duration.labels("error" if isinstance(outcome, Exception) else "ok").observe(
            step.duration)
        call = call_record(command, step, self.pacer.last_start, self._note_call_started)
        if isinstance(outcome, Exception):
            assert self._outcomes is not None
            await self._outcomes.failed(message, command, claim, _as_send_error(outcome), call)
            return
        provider_id = outcome.provider_message_id
        await record_durably([
            lambda: self._record_sent(command, call, provider_id),
            # the plainest record of a success: without the provider's id, which receipts need
            lambda: self._record_sent(command, call, None),
        ], f"the success of {command.message_id}")
        log.info("sent %s to %s as %s", command.message_id, mask_phone(claim.recipient), call.sent_as,
                 extra=command.log_fields() | {"provider_message_id": outcome.provider_message_id})
        self.metrics.messages_sent.labels(command.priority.value).inc()
        await settle(message.ack())

    def _record_sent(self, command: SendCommand, call: CallRecord, provider_id: str | None) -> None:
        with transaction(self.sessions) as session:
            store.record_sent(session, command, call.open(session), provider_id, call.sent_as)

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
