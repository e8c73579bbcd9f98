"""The sender process: one lane per active sender (number), all on one broker connection.

Every few seconds it reads the senders (``wanotify.shared.senders.active_senders``), so a
sender added, changed or disabled is picked up while it runs; each has a lane (``lane.py``)
with its own pace, hold and provider. With no sender rows the environment's single number is
the sender ``default``, on the queues it always had.

Every heartbeat (about a second) it tells other processes it is alive (``liveness``), renews
the leases of its senders (``lease``: only the holder consumes a sender's queues, and a lease
not renewed for a few seconds passes to another process), and reads the runtime settings, so
``wanotify settings set`` reaches every lane within about a second.

The retry sweep republishes retries whose copy never came back.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.providers import Provider
from wanotify.consumers.sender import lease, liveness
from wanotify.consumers.sender.claims import PgClaimStore
from wanotify.consumers.sender.gate import Gate
from wanotify.consumers.sender.lane import Lane, Shared
from wanotify.consumers.sender.outcomes import Outcomes
from wanotify.consumers.sender.pacing import Pacer
from wanotify.consumers.sender.settle import Settler
from wanotify.consumers.sender.upgrade import LegacyQueues
from wanotify.shared.broker import SendQueuePublisher, confirmed_channel, connect
from wanotify.shared.config import Settings
from wanotify.shared.db.copies import ScheduledCopy, deferred_copies, failed_copies, forget_schedule
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.retry import run_db
from wanotify.shared.errors import ConfigError
from wanotify.shared.metrics import Metrics
from wanotify.shared.runtime import RuntimeSettings, env_defaults, load
from wanotify.shared.senders import SenderConfig, active_senders
from wanotify.shared.topology import DEFAULT_SENDER, Topology

log = logging.getLogger(__name__)

SENDERS_REFRESH_SECONDS = 3.0  # a sender added, changed or disabled reaches a running process within this

# Builds the provider a sender sends with; returns it and whether the process owns (closes) it.
ProviderFor = Callable[[SenderConfig], tuple[Provider, bool]]


class Sender:
    def __init__(self, settings: Settings, metrics: Metrics, sessions: sessionmaker[Session],
                 provider: Provider | None = None, *, provider_for: ProviderFor | None = None, gate: Gate | None = None,
                 leases: lease.LeaseStore | None = None, refresh_seconds: float = SENDERS_REFRESH_SECONDS) -> None:
        """``provider``: the environment's number's provider, if the caller made it (else built
        here); ``provider_for`` builds any sender's (``wiring.providers_for`` by default)."""
        from wanotify.consumers.sender.wiring import providers_for  # wiring builds this class

        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.provider_for = provider_for or providers_for(settings, provider)
        self.gate = gate
        self.topology = Topology.of(settings)
        self.sender_id = uuid.uuid4().hex
        self.leases = leases or lease.PgLeaseStore(sessions, settings.namespace)
        self.refresh_seconds = refresh_seconds
        self.lanes: dict[str, Lane] = {}
        self._owned: dict[str, Provider] = {}
        self._broken: dict[str, str] = {}  # sender -> the configuration error already logged
        self._runtime = RuntimeSettings(**env_defaults(settings))
        self._last_renewal = time.monotonic()
        self._publisher: SendQueuePublisher | None = None
        self._legacy: LegacyQueues | None = None
        self._shared: Shared | None = None
        self._pacers: dict[str, Pacer] = {}  # per sender: outlives its lanes (see ``Shared.pacers``)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; calls in flight are finished, recorded and settled first."""
        await run_db(lambda: self._in_transaction(liveness.register), stop)
        await run_db(self._read_runtime, stop)
        connection = await connect(self.settings.amqp_url, f"wanotify-sender-{self.sender_id[:8]}")
        tasks: list[asyncio.Task[None]] = []
        heartbeat: asyncio.Task[None] | None = None
        try:
            await self._start_lanes(connection, stop)
            heartbeat = asyncio.create_task(self._heartbeat_forever())
            tasks = [asyncio.create_task(self._sweep_forever()), asyncio.create_task(self._refresh_forever()),
                     asyncio.create_task(self._move_legacy())]
            await stop.wait()
        finally:
            # Also when starting failed half way: no lane may outlive its connection.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(lane.stop() for lane in self.lanes.values()))
            await self._release(list(self.lanes))
            if heartbeat is not None:
                heartbeat.cancel()
            for provider in self._owned.values():
                provider.close()
            await connection.close()
        await self._say_stopped()

    async def _start_lanes(self, connection: AbstractRobustConnection, stop: asyncio.Event) -> None:
        channel = await confirmed_channel(connection, prefetch=1)
        self._publisher = SendQueuePublisher(channel, self.topology)
        await self._publisher.declare()
        self._legacy = LegacyQueues(connection, self._publisher, self.topology)
        self._publisher.prepare_delay_queue = self._legacy.prepare
        self._shared = Shared(self.settings, self.metrics, self.sessions, self.sender_id, connection,
                              Settler(self._publisher, self.topology.send_dead_queue, self.metrics),
                              Outcomes(self.settings, self.metrics, self.sessions, self.gate),
                              PgClaimStore(self.settings, self.sessions, self.sender_id, self.gate, self.runtime),
                              self.runtime, stop, Counter(), self._pacers)
        await self._refresh_lanes(await run_db(self._active_senders, stop))
        # The environment's provider is its own number's; a sender row's (even one named default)
        # is in its "lane started" line.
        from_environment = DEFAULT_SENDER in self.lanes and self.lanes[DEFAULT_SENDER].config.from_environment
        default = f" (default: {self.settings.whatsapp.describe()})" if from_environment else ""
        log.info("sender %s consuming %s%s", self.sender_id[:8], ", ".join(sorted(self.lanes)) or "no senders", default)
        await self._renew()  # the leases now, not a heartbeat later: an idle number sends at once

    # --- the senders -------------------------------------------------------------------------

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self._refresh_lanes(await asyncio.to_thread(self._active_senders))
            except Exception as exc:  # noqa: BLE001 - the lanes we have keep going; the next refresh tries again
                log.warning("could not read the senders (%s: %s); keeping the current ones", type(exc).__name__, exc)

    async def _refresh_lanes(self, active: list[SenderConfig]) -> None:
        """Start a lane for each new sender, stop those of senders gone or disabled, pass changes on."""
        configs = {c.name: c for c in active}
        for name in [n for n in self.lanes if n not in configs]:
            await self._remove_lane(name, "disabled or removed")
        for name, config in configs.items():
            lane = self.lanes.get(name)
            if lane is not None and _same_provider(lane.config, config):
                lane.reconfigure(config)
                continue
            if lane is not None:
                await self._remove_lane(name, "its provider settings changed")
            self._add_lane(config)

    def _active_senders(self) -> list[SenderConfig]:
        with self.sessions() as session:
            return active_senders(session, self.settings)

    def _add_lane(self, config: SenderConfig) -> None:
        assert self._shared is not None
        try:
            provider, owned = self.provider_for(config)
        except ConfigError as exc:
            if self._broken.get(config.name) != str(exc):
                log.error("sender %s cannot send: %s (fix it, e.g. with `wanotify senders set %s`; it is read again "
                          "every %.0f s)", config.name, exc, config.name, self.refresh_seconds, extra={"sender": config.name})
            self._broken[config.name] = str(exc)
            return
        self._broken.pop(config.name, None)
        if owned:
            self._owned[config.name] = provider
        lane = self.lanes[config.name] = Lane(config, provider, self._shared)
        lane.start()
        log.info("sender %s: lane started (%s)", config.name, provider.name, extra={"sender": config.name})

    async def _remove_lane(self, name: str, why: str) -> None:
        lane = self.lanes.pop(name)
        await lane.stop()
        await self._release([name])
        provider = self._owned.pop(name, None)
        if provider is not None:
            provider.close()
        log.info("sender %s: lane stopped (%s)", name, why, extra={"sender": name})

    # --- the heartbeat: liveness, leases, runtime settings -----------------------------------

    async def _heartbeat_forever(self) -> None:
        """Tell other processes this one is alive, so they never resend what it is sending; keep
        its leases; read the runtime settings."""
        while True:
            await asyncio.sleep(liveness.HEARTBEAT_SECONDS)
            try:
                await asyncio.to_thread(self._in_transaction, liveness.beat)
                await asyncio.to_thread(self._read_runtime)
            except Exception as exc:  # noqa: BLE001 - a missed beat only makes us look dead for a while
                log.debug("heartbeat failed: %s", exc)
            await self._renew()

    async def _renew(self) -> None:
        started = time.monotonic()
        names = list(self.lanes)
        try:
            states = await asyncio.to_thread(self.leases.renew, names, self.sender_id)
        except Exception as exc:  # noqa: BLE001 - the leases lapse on their own if this goes on
            if time.monotonic() - self._last_renewal > lease.LEASE_SECONDS - lease.RENEW_SECONDS:
                log.warning("could not renew the senders' leases for a while (%s); stopping to send until it works",
                            exc)
                for lane in self.lanes.values():
                    lane.lease_lost()
            return
        self._last_renewal = started
        for name, state in states.items():
            if name in self.lanes:
                self.lanes[name].on_lease(state, started)

    async def _release(self, names: list[str]) -> None:
        try:
            await asyncio.to_thread(self.leases.release, names, self.sender_id)
        except Exception as exc:  # noqa: BLE001 - they lapse within seconds anyway
            log.debug("could not release leases: %s", exc)

    def _read_runtime(self) -> None:
        with self.sessions() as session:
            self._runtime = load(session, self.settings)
        self.metrics.gap_setting.set(self._runtime.gap_seconds)

    def runtime(self) -> RuntimeSettings:
        return self._runtime

    async def _say_stopped(self) -> None:
        try:
            await asyncio.to_thread(self._in_transaction, liveness.stopped)
        except Exception as exc:  # noqa: BLE001 - others will notice through the missing heartbeat
            log.debug("could not record the stop: %s", exc)

    def _in_transaction(self, fn) -> None:  # type: ignore[no-untyped-def]
        with transaction(self.sessions) as session:
            fn(session, self.sender_id)

    # --- the retry sweep ---------------------------------------------------------------------

    async def _move_legacy(self) -> None:
        """At start, beside the lanes (a big old backlog takes a while): what an earlier release left waiting."""
        assert self._legacy is not None
        try:
            await self._legacy.move_waiting()
        except Exception as exc:  # noqa: BLE001 - the sweep tries again
            log.warning("could not move the earlier release's waiting messages yet (%s: %s); the recovery sweep "
                        "tries again", type(exc).__name__, exc)

    async def _sweep_forever(self) -> None:
        """The safety net under delayed retry: republish retries whose copy never came back, and
        move what an earlier release's retry queues returned to its send queue."""
        while True:
            await asyncio.sleep(self.settings.retry_sweep_seconds)
            try:
                await self.sweep_once()
                assert self._legacy is not None
                await self._legacy.move_waiting()
            except Exception as exc:  # noqa: BLE001 - the rows stay overdue: the next sweep takes them
                log.warning("recovery sweep failed (%s: %s); the next sweep tries again", type(exc).__name__, exc)

    async def sweep_once(self) -> int:
        """Publish a copy of every overdue retry and deferral, then forget its schedule; returns how many.

        Publishing first: if it fails, or the process dies before the schedule is forgotten, the
        rows are still overdue and the next sweep publishes them again (a second copy is stale).
        """
        copies = await asyncio.to_thread(self._overdue_copies)
        assert self._publisher is not None
        for copy in copies:
            await self._publisher.publish_send(copy.command)
        if copies:
            await run_db(lambda: self._forget(copies))
            log.warning("republished %d overdue retries and deferrals (their copies were presumed lost)", len(copies))
        return len(copies)

    def _overdue_copies(self) -> list[ScheduledCopy]:
        with transaction(self.sessions) as session:
            # A deferral or a scheduled retry later than one sweep interval is presumed lost.
            overdue = self.settings.retry_sweep_seconds
            deferred = deferred_copies(session, overdue_seconds=overdue)
            if not load(session, self.settings).auto_retry_enabled:
                return deferred  # failed messages wait for `wanotify retry-failed`; a deferral is no retry
            return deferred + failed_copies(session, overdue_seconds=overdue)

    def _forget(self, copies: list[ScheduledCopy]) -> None:
        with transaction(self.sessions) as session:
            forget_schedule(session, copies)


def _same_provider(old: SenderConfig, new: SenderConfig) -> bool:
    return (old.provider, dict(old.settings)) == (new.provider, dict(new.settings))
