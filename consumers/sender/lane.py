"""One sender's lane: its three queues, its hold, its pace and its provider.

A process runs one lane per active sender (number). A lane consumes its sender's queues only
while the process holds the sender's lease, each with prefetch 1, and keeps the delivered
heads in its hold (``hold.py``). When its slot opens it sends the highest head
(``schedule.py``): the claim (``store.claim``) checks the lease, the pause, the gap and the
budget under the sender's row lock, then the call runs in the lane's own thread, so a slow
provider on one number never delays another. Whatever follows is a settlement value
(``settle.py``), carried out in one place.

A delivery is handled by the lane's own task, never by the broker client's consumer callback:
when a connection drops, the client cancels its callbacks, but a call in progress goes on,
its outcome is recorded, and the copy the broker redelivers is then dropped as stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.providers import Provider
from wanotify.consumers.sender import lease, store
from wanotify.consumers.sender.calls import Caller, Step, call_record
from wanotify.consumers.sender.choice import Rules
from wanotify.consumers.sender.claims import ClaimStore
from wanotify.consumers.sender.hold import MAX_AGE_SECONDS, Held, Hold
from wanotify.consumers.sender.jitter import JitterEstimate
from wanotify.consumers.sender.outcomes import Outcomes
from wanotify.consumers.sender.pacing import GapDraw, Pacer
from wanotify.consumers.sender.schedule import LEAD_SECONDS, MAX_LEAD_SECONDS, SendNext, next_step
from wanotify.consumers.sender.settle import Ack, Defer, Keep, Requeue, Settlement, Settler
from wanotify.shared.config import Settings
from wanotify.shared.db.retry import Stopped, record_durably, run_db
from wanotify.shared.errors import PermanentError, TransientError
from wanotify.shared.messages import SendCommand
from wanotify.shared.metrics import Metrics
from wanotify.shared.phone import mask_phone
from wanotify.shared.priority import Priority
from wanotify.shared.runtime import RuntimeSettings
from wanotify.shared.sender_report import pause_kind
from wanotify.shared.senders import SenderConfig
from wanotify.shared.topology import DEFAULT_SENDER, PRIORITY_ORDER, Topology, declare_sender_queues_async

log = logging.getLogger(__name__)


@dataclass
class Shared:
    """What the lanes of one process share."""

    settings: Settings
    metrics: Metrics
    sessions: sessionmaker[Session]
    sender_id: str
    connection: AbstractRobustConnection
    settler: Settler
    outcomes: Outcomes
    claims: ClaimStore
    runtime: Callable[[], RuntimeSettings]  # refreshed every heartbeat
    stop: asyncio.Event
    in_flight: Counter[int]  # log id -> deliveries of it being handled in this process
    # Per sender, for the life of the process: a lane rebuilt for the same number (its provider
    # settings changed, or disabled and enabled again) keeps the gap since its predecessor's last
    # call. The database cannot: it only paces the calls of *another* process (``_external_wait``).
    pacers: dict[str, Pacer] = field(default_factory=dict)


class Lane:
    def __init__(self, config: SenderConfig, provider: Provider, shared: Shared) -> None:
        self.config = config
        self.name = config.name
        self.provider = provider
        self.shared = shared
        self.topology = Topology.of(shared.settings)
        self.rules = Rules.of(shared.settings, provider.name)
        self.pacer = shared.pacers.setdefault(config.name, Pacer())
        # How long a send takes from the schedule's choice to the call's thread waiting for the
        # slot (the claim, and two thread hand-offs): the lane claims that much ahead of the slot.
        self._preparation = JitterEstimate(LEAD_SECONDS, window=200, min_samples=10, quantile=0.99,
                                           floor=LEAD_SECONDS, ceiling=MAX_LEAD_SECONDS)
        self._chosen_at = 0.0  # monotonic: when the schedule chose the head being sent
        self.caller = Caller(provider, self.pacer, shared.settings.default_language)
        self.gap = _gap_draw(config)
        self.hold: Hold[AbstractIncomingMessage] = Hold()
        self.state = lease.LaneState(held=False)
        self._lease_until = 0.0  # monotonic: our lease is surely ours until then
        self._pause_until = 0.0  # monotonic: the sender's pause, as last read
        self._not_before = 0.0  # monotonic: another process's gap, or a claim still in progress
        self._last_sent: tuple[Priority, float] | None = None  # the last head settled: its priority, when
        self._wake = asyncio.Event()
        self._closing = False
        self._channel: AbstractChannel | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"wanotify-lane-{self.name}")
        self._task: asyncio.Task[None] | None = None

    # --- life --------------------------------------------------------------------------------

    def reconfigure(self, config: SenderConfig) -> None:
        """The sender's row changed (its gap, its limits): from its next call on."""
        if config != self.config:
            self.config, self.gap = config, _gap_draw(config)
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lane-{self.name}")

    async def stop(self) -> None:
        """Finish the call in hand, hand every held delivery back, stop consuming."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False)
        # This process no longer follows the number's pause: a pause it last saw must not stay
        # exported until the process restarts (a paused sender then disabled).
        self.shared.metrics.forget_pause(self.name)

    def on_lease(self, state: lease.LaneState, renewed_at: float) -> None:
        """A lease renewal (started at monotonic ``renewed_at``) says what we hold and the pause."""
        was_leased = self._leased()
        self.state = state
        self._lease_until = renewed_at + lease.LEASE_SECONDS - lease.RENEW_SECONDS if state.held else 0.0
        self._pause_until = time.monotonic() + state.pause_left()
        self.shared.metrics.show_pause(self.name, pause_kind(state.pause_reason) if state.pause_left() > 0 else None)
        if self._leased() != was_leased or state.pause_left() < MAX_AGE_SECONDS:
            self._wake.set()

    def lease_lost(self) -> None:
        """The renewal failed for too long, or a claim found another holder."""
        self._lease_until = 0.0
        self._wake.set()

    def _leased(self) -> bool:
        return time.monotonic() < self._lease_until

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if self._closing:
                    await self._release("stopping")
                    return
                await self._follow_lease()
                await self._hand_back_old()
                await self._step()
            except Exception:
                log.exception("sender %s: unexpected error in its lane; going on", self.name, extra={"sender": self.name})
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        """Send one held head if its time has come; else sleep as the schedule says."""
        now = time.monotonic()
        runtime_gap = self.shared.runtime().gap_seconds
        wait_left = max(self.pacer.remaining(self.gap.current(runtime_gap)), self._not_before - now)
        last = self.pacer.last_start
        step = next_step(self.hold, leased=self._leased() and self._channel is not None,
                         pause_left=max(0.0, self._pause_until - now), wait_left=wait_left, now=now,
                         idle_for=float("inf") if last is None else now - last, last_sent=self._last_sent,
                         lead=self._lead())
        if isinstance(step, SendNext):
            self._chosen_at = now
            await self._send(step.held)
            return
        await self._sleep_until_woken(step.seconds)

    async def _sleep_until_woken(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    async def _follow_lease(self) -> None:
        """Consume while we hold the lease and the number is not paused for longer than a head
        may be held: a long pause hands the heads back once and consumes again ``MAX_AGE``
        before it ends (or at the renewal after a resume), instead of handing them back every
        ``MAX_AGE``; on a quorum queue each hand-back counts toward the delivery limit."""
        leased = self._leased()
        long_pause = self._pause_until - time.monotonic() >= MAX_AGE_SECONDS
        if leased and not long_pause and self._channel is None:
            await self._consume()
        elif self._channel is not None and (not leased or long_pause):
            await self._release("lease lost" if not leased else "paused for longer than a head may be held")

    async def _consume(self) -> None:
        channel = await self.shared.connection.channel()
        await channel.set_qos(prefetch_count=1)  # per consumer: each queue hands over its head only
        if self.name != DEFAULT_SENDER:
            await declare_sender_queues_async(channel, self.topology, self.name)
        self._channel = channel
        try:
            for priority in PRIORITY_ORDER:
                # A passive declare (ensure): only a queue the channel knows is consumed again after a reconnect.
                queue = await channel.get_queue(self.topology.send_queue_for(self.name, priority))
                tag = await queue.consume(partial(self._on_delivery, priority))
                self._consumers.append((queue, tag))
        except Exception:
            await self._release("could not consume all three queues")  # all or none; the loop tries again
            raise
        log.info("sender %s: holding its lease, consuming %s", self.name, self.topology.sender_queue_prefix(self.name),
                 extra={"sender": self.name})

    async def _on_delivery(self, priority: Priority, message: AbstractIncomingMessage) -> None:
        self.hold.put(priority, message, time.monotonic())
        self._wake.set()

    async def _release(self, why: str) -> None:
        """Stop consuming and hand every held delivery back to its queue's head."""
        channel, consumers, self._channel, self._consumers = self._channel, self._consumers, None, []
        if channel is None:
            return
        for queue, tag in consumers:
            try:
                await queue.cancel(tag)
            except Exception as exc:  # noqa: BLE001 - closing the channel below cancels it too
                log.debug("could not cancel a consumer: %s", exc)
        for held in self.hold.take_all():
            await self.shared.settler.apply(held.item, None, Requeue())
        try:
            await channel.close()
        except Exception as exc:  # noqa: BLE001 - a closed channel's deliveries go back anyway
            log.debug("could not close the lane's channel: %s", exc)
        log.info("sender %s: stopped consuming (%s)", self.name, why, extra={"sender": self.name})

    async def _hand_back_old(self) -> None:
        """A head held for ``MAX_AGE_SECONDS`` (a long pause) goes back, inside the broker's consumer timeout."""
        for held in self.hold.older_than(MAX_AGE_SECONDS, time.monotonic()):
            self.hold.remove(held)
            await self.shared.settler.apply(held.item, None, Requeue())

    # --- one delivery ------------------------------------------------------------------------

    async def _send(self, held: Held[AbstractIncomingMessage]) -> None:
        message = held.item
        if _channel_gone(message):  # the broker redelivers it on the new channel
            self.hold.remove(held)
            return
        command: SendCommand | None = None
        try:
            command = SendCommand.decode(message.body)
        except PermanentError as exc:
            settlement: Settlement = self.shared.outcomes.undecodable(str(exc))
        else:
            settlement = await self._handle_counted(message, command)
        if await self.shared.settler.apply(message, command, settlement):
            self.hold.remove(held)
            self._last_sent = (held.priority, time.monotonic())

    async def _handle_counted(self, message: AbstractIncomingMessage, command: SendCommand) -> Settlement:
        in_flight = self.shared.in_flight
        in_flight[command.log_id] += 1
        try:
            settlement = await self._handle(command)
            self.shared.outcomes.succeeded(message.body)
            return settlement
        except Stopped:
            return Requeue()
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never crash on one delivery
            return await self.shared.outcomes.unexpected(message.body, exc)
        finally:
            in_flight[command.log_id] -= 1
            if in_flight[command.log_id] <= 0:
                del in_flight[command.log_id]

    async def _handle(self, command: SendCommand) -> Settlement:
        gap = self.gap.current(self.shared.runtime().gap_seconds)
        claim = await run_db(lambda: self.shared.claims.claim(command, self.config, gap, self.pacer.remaining,
                                                              self._in_flight_elsewhere(command), self.rules),
                             self.shared.stop)
        if not isinstance(claim, store.Go):
            return self._not_now(command, claim)
        self.shared.metrics.show_pause(self.name, None)
        if claim.ambiguous:
            # Our own claim with no call of ours in hand: its commit landed but its answer was
            # lost, so the call was never made (another process's is parked: ``store.claim``).
            log.warning("calling for %s: its claim was recorded but its call never made", command.message_id,
                        extra=command.log_fields())
        step = await asyncio.get_running_loop().run_in_executor(self._executor, self.caller.call, command, claim)
        self._preparation.add(step.ready_at - self._chosen_at)
        self.gap.called()
        return await self._after_call(command, step)

    def _lead(self) -> float:
        """How long before its slot the lane claims: what preparing a call took (its 99th
        percentile, plus a millisecond), so the call is ready as the slot opens."""
        return min(MAX_LEAD_SECONDS, self._preparation.margin() + 0.001)

    def _in_flight_elsewhere(self, command: SendCommand) -> Callable[[int], bool]:
        """Whether another delivery of this message is still being handled in this process."""
        in_flight = self.shared.in_flight
        return lambda log_id: in_flight[log_id] > (1 if log_id == command.log_id else 0)

    def _not_now(self, command: SendCommand, claim: store.Claim) -> Settlement:
        """The claim said no call now: why decides what becomes of the delivery."""
        fields = command.log_fields()
        if isinstance(claim, store.Stale):
            log.info("dropping stale copy %s: %s", command.message_id, claim.reason, extra=fields)
            self.shared.metrics.stale_copies.inc()
            return Ack()
        if isinstance(claim, store.Refused):
            if claim.refusal.code == store.OUTCOME_UNKNOWN:
                self.shared.metrics.ambiguous_calls.inc()
            return self.shared.outcomes.refused(command, claim.refusal)
        if isinstance(claim, store.Deferred):
            log.info("deferring %s by %.1f s (%s)", command.message_id, claim.seconds, claim.reason, extra=fields)
            return Defer(claim.seconds, claim.reason)
        assert isinstance(claim, store.Wait)
        if claim.why == "lease":
            log.warning("sender %s: another process holds its lease; handing its deliveries back", self.name,
                        extra=fields)
            self.lease_lost()
        elif claim.why == "paused":
            self._pause_until = time.monotonic() + claim.seconds
            self.shared.metrics.show_pause(self.name, pause_kind(claim.pause_reason))
        else:  # another process's gap, or another try of this message still in progress
            if claim.why == "claimed":
                log.debug("holding %s: another try of it is still in progress", command.message_id, extra=fields)
            self._not_before = time.monotonic() + claim.seconds
        return Keep()

    async def _after_call(self, command: SendCommand, step: Step) -> Settlement:
        claim, outcome = step.claim, step.outcome
        assert isinstance(claim, store.Go) and outcome is not None
        metrics = self.shared.metrics
        metrics.last_call.labels(self.name).set(time.time())
        for gap in (step.since_previous, step.template_gap):
            if gap is not None:
                metrics.send_gap.labels(self.name).observe(gap)
        metrics.provider_call_duration.labels("error" if isinstance(outcome, Exception) else "ok").observe(step.duration)
        call = call_record(command, step, self.name, self.pacer.last_start,
                           lambda session: self._note_call_started(session, claim.recipient))
        if isinstance(outcome, Exception):
            return await self.shared.outcomes.failed(self.name, command, claim, _as_send_error(outcome), call)
        provider_id = outcome.provider_message_id
        claims = self.shared.claims
        await record_durably([
            lambda: claims.record_sent(command, claim.recipient, call, provider_id),
            # the plainest record of a success: without the provider's id, which receipts need
            lambda: claims.record_sent(command, claim.recipient, call, None),
        ], f"the success of {command.message_id}")
        log.info("sent %s to %s as %s from %s", command.message_id, mask_phone(claim.recipient), call.sent_as, self.name,
                 extra=command.log_fields() | {"provider_message_id": provider_id, "sender": self.name})
        metrics.messages_sent.labels(command.priority.value, self.name).inc()
        return Ack()

    def _note_call_started(self, session: Session, recipient: str) -> None:
        started = self.pacer.last_start
        if started is not None:
            self.shared.claims.call_started(session, self.name, recipient, time.monotonic() - started)


def _gap_draw(config: SenderConfig) -> GapDraw:
    return GapDraw(config.gap, jittered=config.gap_max_seconds is not None)


def _channel_gone(message: AbstractIncomingMessage) -> bool:
    try:
        message.channel  # noqa: B018 - raises once the delivery's channel has closed
    except Exception:  # noqa: BLE001
        return True
    return False


def _as_send_error(exc: Exception) -> TransientError | PermanentError:
    if isinstance(exc, TransientError | PermanentError):
        return exc
    # A bug or an unexpected library error: retrying is the safe default, and it is logged.
    log.error("provider raised %s; treating it as transient", type(exc).__name__, exc_info=exc)
    return TransientError(f"{type(exc).__name__}: {exc}", code="internal")
