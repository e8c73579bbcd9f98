"""How one message goes out — free-form text or an approved template — or why it does not go. Pure.

The Cloud API takes free-form text only inside the customer-service window that the
recipient's own last message opened (``CUSTOMER_WINDOW_SECONDS``); outside it, only an
approved template. So for the ``meta`` provider the choice is made per message, just before
the call, from what the claim read: inside the window the local text goes (with the mapped
template ready in case Meta disagrees, error 131047); outside it the mapped template goes;
without a usable template the message is parked before any call, and no attempt is spent.
Gateways and the in-process fake know no window: they always send the text.

An opt-out the scope covers (``wanotify.shared.consent``) stops a message for every provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wanotify.shared.config import Settings
from wanotify.shared.consent import OPTED_OUT, opt_out_covers, opted_out_reason
from wanotify.shared.db.models import Status
from wanotify.shared.meta_templates import Mapping, MappingError, TemplateCall, blocked, fill, send_variables

NO_APPROVED_TEMPLATE = "no_approved_template"
TEMPLATE_PARAMS = "template_params"


@dataclass(frozen=True)
class Rules:
    """The settings the choice depends on."""

    windowed: bool  # the provider is the Cloud API, which enforces the window
    text_first: bool  # WHATSAPP_SEND_MODE=text: the window is not known here, try text first
    window_seconds: float
    opt_out_scope: str

    @classmethod
    def of(cls, settings: Settings, provider_name: str) -> Rules:
        return cls(windowed=provider_name == "meta", text_first=settings.whatsapp.send_mode == "text",
                   window_seconds=settings.customer_window_seconds, opt_out_scope=settings.opt_out_scope)


@dataclass(frozen=True)
class Facts:
    """What the claim read about one message, its template's mapping and its recipient."""

    recipient: str
    template: str
    event_type: str
    priority: str
    variables: dict[str, Any] | None
    mapping: Mapping | None
    meta_status: str | None  # Meta's status of the mapped template, if known
    last_inbound_at: datetime | None
    opted_out_at: datetime | None


@dataclass(frozen=True)
class Refusal:
    """The message is not sent: its row becomes ``status`` with ``code`` and ``reason``."""

    status: Status  # DEAD (parked: fix, then replay) or CANCELLED (an opt-out)
    code: str
    reason: str


@dataclass(frozen=True)
class Text:
    """Send the local text; ``fallback`` is what to do if Meta answers 131047 (None: no window)."""

    fallback: TemplateCall | Refusal | None = None


@dataclass(frozen=True)
class AsTemplate:
    call: TemplateCall


Form = Text | AsTemplate


def choose(facts: Facts, now: datetime, rules: Rules) -> Form | Refusal:
    """The form this message goes in now, or the reason it does not go."""
    if facts.opted_out_at is not None and opt_out_covers(
            rules.opt_out_scope, category=facts.mapping.category if facts.mapping else None,
            event_type=facts.event_type, priority=facts.priority):
        return Refusal(Status.CANCELLED, OPTED_OUT, opted_out_reason(rules.opt_out_scope))
    if not rules.windowed:
        return Text()
    template = template_form(facts)
    if rules.text_first or window_open(facts.last_inbound_at, now, rules.window_seconds):
        return Text(fallback=template)
    return template if isinstance(template, Refusal) else AsTemplate(template)


def window_open(last_inbound_at: datetime | None, now: datetime, window_seconds: float) -> bool:
    """Whether free-form text may go now (the rule of ``wanotify.shared.recipients.window_open``)."""
    return last_inbound_at is not None and now - last_inbound_at < timedelta(seconds=window_seconds)


def template_form(facts: Facts) -> TemplateCall | Refusal:
    """The mapped template with its parameters filled, or why it cannot be sent."""
    mapping, key = facts.mapping, facts.template
    if mapping is None:
        return Refusal(Status.DEAD, NO_APPROVED_TEMPLATE, (
            f"the recipient's 24-hour window is closed and no approved template is mapped to {key}: map one with "
            f"`wanotify templates set {key} --meta-name NAME --meta-language LANG --meta-category utility "
            f"--meta-params JSON`, then `wanotify dead replay --reason {NO_APPROVED_TEMPLATE}`"))
    status = blocked(facts.meta_status)
    if status is not None:
        code, what = status
        return Refusal(Status.DEAD, code, (
            f"the approved template {mapping.name} ({mapping.language}) mapped to {key} {what} "
            f"(`wanotify templates set {key} --meta-name …`), then `wanotify dead replay --reason {code}`"))
    try:
        return fill(mapping, send_variables(facts.variables, facts.recipient))
    except MappingError as exc:
        return Refusal(Status.DEAD, TEMPLATE_PARAMS, (
            f"{key}'s mapping cannot fill {mapping.name}'s {exc}: fix it with `wanotify templates set {key} "
            f"--meta-params JSON`, then `wanotify dead replay --reason {TEMPLATE_PARAMS}`"))
