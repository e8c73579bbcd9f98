"""The provider calls of one claimed message, with a scripted provider: the 131047 resend."""

from __future__ import annotations

import time

from wanotify.consumers.providers import OutgoingMessage, SendResult
from wanotify.consumers.providers.classify import NeedsTemplate
from wanotify.consumers.sender import store
from wanotify.consumers.sender.calls import Caller, call_record
from wanotify.consumers.sender.choice import AsTemplate, Refusal, Text
from wanotify.consumers.sender.pacing import Pacer
from wanotify.shared.db.models import Status
from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import SendCommand
from wanotify.shared.meta_templates import TemplateCall
from wanotify.shared.priority import Priority
from wanotify.shared.runtime import RuntimeSettings

GAP = 0.05
RUNTIME = RuntimeSettings(auto_retry_enabled=True, max_retry_attempts=3, retry_delay_minutes=5.0,
                          message_delay_seconds=GAP)
TEMPLATE = TemplateCall("payment_link_v2", "id", [{"type": "body", "parameters": [{"type": "text", "text": "Budi"}]}])
COMMAND = SendCommand(7, 1, Priority.HIGH, "e", "payment_link")


class ScriptedProvider:
    """Answers each call with the next scripted outcome, and remembers what it was sent."""

    name = "meta"

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[tuple[float, OutgoingMessage]] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.sent.append((time.monotonic(), message))
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return SendResult("wamid.x")

    def close(self) -> None:
        pass


def go(form: Text | AsTemplate) -> store.Go:
    return store.Go("+628114040707", "Halo Budi", "payment_link", 0.0, RUNTIME, attempt_id=1, ambiguous=False,
                    form=form)


def needs_template() -> NeedsTemplate:
    return NeedsTemplate("HTTP 400 (#131047) Re-engagement message", code="meta_131047")


def test_a_refused_text_is_resent_once_as_the_template_one_gap_later() -> None:
    provider = ScriptedProvider(needs_template(), None)
    step = Caller(provider, Pacer(), "id").call(COMMAND, go(Text(fallback=TEMPLATE)))
    (first_at, first), (second_at, second) = provider.sent
    assert (first.template_call, second.template_call) == (None, TEMPLATE)
    assert second_at - first_at >= GAP
    assert isinstance(step.outcome, SendResult) and step.text_refused is not None
    assert step.template_gap is not None and step.template_gap >= GAP
    assert call_record(COMMAND, step, "default", None, lambda s: None).sent_as == "template"


def test_a_refused_text_without_a_usable_template_fails_with_the_reason_there_is_none() -> None:
    provider = ScriptedProvider(needs_template())
    refusal = Refusal(Status.DEAD, "no_approved_template", "map one with wanotify templates set payment_link")
    step = Caller(provider, Pacer(), "id").call(COMMAND, go(Text(fallback=refusal)))
    assert len(provider.sent) == 1
    assert isinstance(step.outcome, PermanentError) and step.outcome.code == "no_approved_template"
    assert str(step.outcome).endswith("map one with wanotify templates set payment_link")
    assert call_record(COMMAND, step, "default", None, lambda s: None).sent_as == "text"


def test_a_template_or_a_plain_text_is_called_once_whatever_the_answer() -> None:
    for form in (AsTemplate(TEMPLATE), Text()):
        provider = ScriptedProvider(needs_template())
        step = Caller(provider, Pacer(), "id").call(COMMAND, go(form))
        assert len(provider.sent) == 1 and isinstance(step.outcome, NeedsTemplate)
        assert provider.sent[0][1].template_call == (TEMPLATE if isinstance(form, AsTemplate) else None)


class PreparingProvider(ScriptedProvider):
    """Builds each request ahead of its call (``prepare``), remembering when it did."""

    def __init__(self, *outcomes: Exception | None, failing_prepare: Exception | None = None) -> None:
        super().__init__(*outcomes)
        self.prepared_at: list[float] = []
        self.failing_prepare = failing_prepare

    def prepare(self, message: OutgoingMessage):  # type: ignore[no-untyped-def]
        if self.failing_prepare is not None:
            raise self.failing_prepare
        self.prepared_at.append(time.monotonic())
        return lambda: self.send(message)


def test_the_request_is_built_before_the_slot_opens_and_sent_as_it_opens() -> None:
    provider = PreparingProvider(None, None)
    caller = Caller(provider, Pacer(), "id")
    caller.call(COMMAND, go(Text()))
    opened = time.monotonic() + GAP  # the second call's slot opens one gap after the first's end
    caller.call(COMMAND, go(Text()))
    (_, _), (sent_at, _) = provider.sent
    assert provider.prepared_at[1] < opened - GAP / 2  # built at once, not after the wait
    assert sent_at >= provider.prepared_at[1] + GAP / 2


def test_a_request_that_cannot_be_built_fails_like_the_call_would_without_calling() -> None:
    provider = PreparingProvider(failing_prepare=PermanentError("cannot encode", code="internal"))
    step = Caller(provider, Pacer(), "id").call(COMMAND, go(Text()))
    assert isinstance(step.outcome, PermanentError) and provider.sent == []
