"""The claim and the success record as the lane sees them: a small interface over ``store``,
so a lane's decisions can be tested with a fake instead of a database."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.sender import store
from wanotify.consumers.sender.choice import Rules
from wanotify.consumers.sender.gate import Gate, StartedParts
from wanotify.consumers.sender.outcomes import CallRecord, SingleCall
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import autocommit_twin, transaction
from wanotify.shared.db.folded import folded
from wanotify.shared.messages import SendCommand
from wanotify.shared.runtime import RuntimeSettings
from wanotify.shared.senders import SenderConfig

# The claim accepts a slot this close to opening (the lane claims a little before it).
CLAIM_LEAD_SECONDS = 0.16


class ClaimStore(abc.ABC):
    @abc.abstractmethod
    def claim(self, command: SendCommand, config: SenderConfig, gap: float, local_remaining: Callable[[float], float],
              in_flight: Callable[[int], bool], rules: Rules) -> store.Claim:
        """May this copy go now from ``config``'s number (``store.claim``)?"""

    @abc.abstractmethod
    def call_started(self, session: Session, sender: str, recipient: str, seconds_ago: float) -> None:
        """Replace the planned start of ``sender``'s last call by its actual start (in the record's transaction)."""

    @abc.abstractmethod
    def record_sent(self, command: SendCommand, recipient: str, call: CallRecord, provider_id: str | None) -> None:
        """The call succeeded: record it (and tell the budget)."""


class PgClaimStore(ClaimStore):
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], sender_id: str, gate: Gate | None,
                 runtime: Callable[[], RuntimeSettings]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sender_id = sender_id
        self.gate = gate
        self.runtime = runtime
        # One statement is its own transaction: no BEGIN and COMMIT round trips around it (the
        # claim's transaction sends its own, folded into its first and last statements).
        self.autocommit = autocommit_twin(sessions.kw["bind"])

    def claim(self, command: SendCommand, config: SenderConfig, gap: float, local_remaining: Callable[[float], float],
              in_flight: Callable[[int], bool], rules: Rules) -> store.Claim:
        pool = store.Pool(config.name, gap, require_lease=True, gate=self.gate, config=config)
        # BEGIN goes with the claim's read and COMMIT with its write: two round trips for a call.
        with folded(self.autocommit) as session:
            return store.claim(session, command, self.settings, self.sender_id, local_remaining, CLAIM_LEAD_SECONDS,
                               lambda _session: self.runtime(), in_flight, rules, pool)

    def call_started(self, session: Session, sender: str, recipient: str, seconds_ago: float) -> None:
        store.note_call_started(session, self.settings.namespace, self.sender_id, seconds_ago, sender=sender)
        if self.gate is not None:  # the recipient interval counts from the actual start too
            self.gate.started(session, sender, recipient, seconds_ago)

    def record_sent(self, command: SendCommand, recipient: str, call: CallRecord, provider_id: str | None) -> None:
        # One statement, where the gate (if any) can put its part in it; a gate that cannot (a
        # test's) keeps the transaction, where its own methods run.
        gate_parts = None if self.gate is None else self.gate.started_parts()
        if call.single is not None and (self.gate is None or gate_parts is not None):
            self._record_single(command, recipient, call, call.single, provider_id, gate_parts)
            return
        with transaction(self.sessions) as session:
            store.record_sent(session, command, call.open(session), provider_id, call.sent_as)
            if self.gate is not None:
                self.gate.delivered(session, recipient)

    def _record_single(self, command: SendCommand, recipient: str, call: CallRecord, single: SingleCall,
                       provider_id: str | None, gate_parts: StartedParts | None) -> None:
        """The usual success in one round trip: one statement on an autocommit connection."""
        sent = store.PlainSend(command.log_id, single.attempt_id, provider_id, call.sent_as, self.settings.namespace,
                               single.sender, self.sender_id, recipient, time.monotonic() - single.started,
                               gate_parts)
        with self.autocommit.connect() as connection:
            store.record_plain_send(connection, sent)
