"""Making the provider call(s) for one claimed message, in the worker thread.

One call, normally. When text was chosen and Meta answers 131047 (the window is closed after
all), the mapped template goes next, one gap later, in the same step: no attempt is spent and
no retry delay waited. Nothing touches the database between the two calls; both are recorded
together afterwards (``call_record``), so a database outage can never lead to a resend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from sqlalchemy.orm import Session

from wanotify.consumers.providers import OutgoingMessage, Provider, SendResult
from wanotify.consumers.providers.base import preparer
from wanotify.consumers.providers.classify import NeedsTemplate
from wanotify.consumers.sender import store
from wanotify.consumers.sender.choice import AsTemplate, Refusal, Text
from wanotify.consumers.sender.outcomes import CallRecord, SingleCall
from wanotify.consumers.sender.pacing import Pacer
from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import SendCommand
from wanotify.shared.meta_templates import TemplateCall
from wanotify.shared.phone import mask_phone

log = logging.getLogger(__name__)


@dataclass
class Step:
    """What one claim-and-call step did."""

    claim: store.Claim
    ready_at: float = 0.0  # time.monotonic() when the call's thread began to wait for the slot
    since_previous: float | None = None  # since the start of this sender's previous call
    duration: float = 0.0
    outcome: SendResult | Exception | None = None  # None: no call was made
    sent: OutgoingMessage | None = None  # what the last call sent
    # Meta refused the text with 131047 and the template went next: the text's error, and the
    # template call's gap since the text call.
    text_refused: NeedsTemplate | None = None
    template_gap: float | None = None


class Caller:
    """Calls the provider for a claimed message, paced by ``pacer``."""

    def __init__(self, provider: Provider, pacer: Pacer, language: str) -> None:
        self.provider = provider
        self.pacer = pacer
        self.language = language
        self._preparer = preparer(provider)

    def call(self, command: SendCommand, claim: store.Go) -> Step:
        """Wait for the slot, then call (and resend as the template if Meta asks for one)."""
        outgoing = OutgoingMessage(command.log_id, claim.recipient, claim.body, claim.template, self.language,
                                   claim.form.call if isinstance(claim.form, AsTemplate) else None)
        ready_at = time.monotonic()
        call = self._prepare(outgoing)  # before the slot: the request leaves as it opens
        since_previous = self.pacer.wait_for_slot(claim.gap_seconds, ready_at + claim.external_wait)
        started = time.monotonic()
        step = Step(claim, ready_at, since_previous, outcome=self._call(call), sent=outgoing)
        fallback = claim.form.fallback if isinstance(claim.form, Text) else None
        if isinstance(step.outcome, NeedsTemplate) and fallback is not None:
            self._instead_of_text(step, claim, fallback)
        step.duration = time.monotonic() - started
        return step

    def _prepare(self, outgoing: OutgoingMessage) -> Callable[[], SendResult]:
        try:
            return self._preparer(outgoing)
        except Exception as exc:  # noqa: BLE001 - the call then fails as a send would, when it is made
            return partial(_raise, exc)

    def _call(self, call: Callable[[], SendResult]) -> SendResult | Exception:
        try:
            outcome: SendResult | Exception = call()
        except Exception as exc:  # noqa: BLE001 - sorted by class by the caller
            outcome = exc
        self.pacer.mark_end()
        return outcome

    def _instead_of_text(self, step: Step, claim: store.Go, fallback: TemplateCall | Refusal) -> None:
        """Meta refused the text (131047): send the mapped template now, or give the reason there is none."""
        refused = step.outcome
        assert isinstance(refused, NeedsTemplate) and step.sent is not None
        if isinstance(fallback, Refusal):
            step.outcome = PermanentError(f"{refused} — {fallback.reason}", code=fallback.code)
            return
        log.info("text to %s refused (131047): sending its approved template instead", mask_phone(step.sent.recipient))
        step.text_refused, step.sent = refused, replace(step.sent, template_call=fallback)
        call = self._prepare(step.sent)
        step.template_gap = self.pacer.wait_for_slot(claim.gap_seconds)
        step.outcome = self._call(call)


def _raise(exc: Exception) -> SendResult:
    raise exc


def call_record(command: SendCommand, step: Step, sender: str, last_start: float | None,
                note_started: Callable[[Session], None]) -> CallRecord:
    """How to record the step's call(s): the attempt row (split in two when the text was refused
    and the template went), and ``note_started`` in the same transaction."""
    claim, template = step.claim, step.sent.template_call if step.sent else None
    assert isinstance(claim, store.Go)
    refused = step.text_refused

    def open_record(session: Session) -> int:
        attempt_id = claim.attempt_id
        if refused is not None and last_start is not None:
            attempt_id = store.record_text_refused(session, command, attempt_id, refused,
                                                   time.monotonic() - last_start)
        note_started(session)
        return attempt_id

    single = SingleCall(claim.attempt_id, sender, last_start) if refused is None and last_start is not None else None
    return CallRecord(open_record, "template" if template else "text", template, single)
