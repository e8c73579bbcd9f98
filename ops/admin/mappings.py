"""A template's approved counterpart on the Cloud API: set, cleared, shown and previewed.

Outside a recipient's 24-hour window only an approved template may go, so a template can be
mapped to one (``templates set KEY --meta-name … --meta-params JSON``). A mapping is checked
before it is saved: its names and the shape of its parameters (``wanotify.shared.meta_templates``), the
variables its parameters use against what the template's events provide, and a render with
their sample data. Each change is kept in the template's history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from wanotify.consumers.providers.base import OutgoingMessage
from wanotify.consumers.providers.meta import template_message_payload, text_message_payload
from wanotify.ops.admin import templates as template_service
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.db.models import MetaTemplate, Template
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.meta_templates import (
    Mapping,
    MappingError,
    TemplateCall,
    blocked,
    check_mapping,
    fill,
    send_variables,
    stored_variables,
    used_variables,
)
from wanotify.shared.phone import normalize_phone
from wanotify.shared.templates import SAMPLE_VARIABLES, trial_render


@dataclass(frozen=True)
class MappingChange:
    """What ``templates set`` was asked to change; None keeps the current value."""

    name: str | None = None
    language: str | None = None
    category: str | None = None
    params: str | None = None  # JSON text
    clear: bool = False

    @property
    def given(self) -> bool:
        return self.clear or any(v is not None for v in (self.name, self.language, self.category, self.params))


def set_mapping(session: Session, actor: str, key: str, change: MappingChange,
                default_language: str) -> dict[str, Any]:
    """Set (after checking it) or clear template ``key``'s mapping; returns it with a sample."""
    found = session.get(Template, key, with_for_update=True)
    if found is None:
        raise ActionRefused(f"there is no template {key!r} — create it first with `wanotify templates set {key} "
                            "--body TEXT`")
    before = template_service.snapshot(found)
    if change.clear:
        found.meta_name = found.meta_language = found.meta_category = found.meta_params = None
        result: dict[str, Any] = {"mapping": None}
    else:
        mapping = _merged(found, change, default_language)
        sample = _check_with_events(session, key, mapping)
        found.meta_name, found.meta_language = mapping.name, mapping.language
        found.meta_category, found.meta_params = mapping.category, mapping.params
        result = {"mapping": describe(found), "sample": sample.as_json(), "warnings": _warnings(session, mapping)}
    changed = template_service._log_change(session, actor, key, before, template_service.snapshot(found))
    return {"key": key, "changed": changed} | result


def _merged(found: Template, change: MappingChange, default_language: str) -> Mapping:
    name = change.name or found.meta_name
    if not name:
        raise ActionRefused("give --meta-name NAME: the approved template sent outside the 24-hour window")
    category = (change.category or found.meta_category or "").lower()
    if not category:
        raise ActionRefused("give --meta-category utility|marketing|authentication (an opt-out stops marketing ones)")
    params = found.meta_params or {} if change.params is None else _parse(change.params)
    try:
        return check_mapping(name, change.language or found.meta_language or default_language, category, params)
    except MappingError as exc:
        raise ActionRefused(str(exc)) from None


def _parse(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ActionRefused(f"--meta-params is not valid JSON ({exc}): e.g. '{{\"body\": [\"{{{{ name }}}}\"]}}'") \
            from None


def _check_with_events(session: Session, key: str, mapping: Mapping) -> TemplateCall:
    """Refuse parameters that use a variable the template's events lack, or fail on their sample
    data: tried like the template's body (``trial_render``), so a free variable's placeholder
    gets its text where a use needs one, and what fails whatever the values is refused (so is one
    call that needs a number and a text at once, as for a body)."""
    events = template_service.provided(session, key)
    used = used_variables(mapping.params)
    unknown = sorted(used - events.names) if events.names is not None else []
    if unknown:
        raise ActionRefused(f"--meta-params uses {unknown[0]!r}, which {', '.join(events.event_types)} events do "
                            f"not carry; they provide: {', '.join(sorted(events.names or ()))}")
    sample = events.values(used | set(events.names or ()))
    try:
        return fill(mapping, send_variables(stored_variables(sample), str(SAMPLE_VARIABLES["phone"])), trial_render)
    except MappingError as exc:
        raise ActionRefused(f"--meta-params fails on sample data: {exc}") from None


def _warnings(session: Session, mapping: Mapping) -> list[str]:
    """What Meta last said about the approved template, when it forbids or delays sending it."""
    known = session.get(MetaTemplate, (mapping.name, mapping.language))
    if known is None or not known.status:
        return []
    status = blocked(known.status)
    if status is not None:
        return [f"Meta reports {mapping.name} ({mapping.language}) as {known.status}: messages outside the window "
                f"are parked as {status[0]} until it is approved again"]
    if known.status.upper() != "APPROVED":
        return [f"Meta reports {mapping.name} ({mapping.language}) as {known.status}: Meta refuses it until it "
                "is approved"]
    return []


def describe(found: Template) -> dict[str, Any] | None:
    """The template's mapping as shown by ``templates show``."""
    mapping = Mapping.from_columns(found.meta_name, found.meta_language, found.meta_category, found.meta_params)
    if mapping is None:
        return None
    return {"name": mapping.name, "language": mapping.language, "category": mapping.category,
            "params": mapping.params}


def preview(session: Session, key: str, data: dict[str, Any], region: str) -> dict[str, Any]:
    """The local text for sample data (``data`` overrides it), and the exact Cloud API JSON of
    both forms: text (inside the window) and the mapped template (outside it)."""
    found = session.get(Template, key)
    if found is None:
        raise ActionRefused(f"there is no template {key!r} — `wanotify templates list` shows them")
    mapping = Mapping.from_columns(found.meta_name, found.meta_language, found.meta_category, found.meta_params)
    # The sample data the template was checked with (``templates.Provided``), tried the same
    # way (``trial_render``), so a preview fails only where the check would
    events = template_service.provided(session, key)
    recipient = _recipient(data, region)
    try:
        text, variables = template_service.sample_render(
            found.body, events, data, extra=events.values(used_variables(mapping.params) if mapping else ()))
        call = fill(mapping, send_variables(stored_variables(variables), recipient), trial_render) if mapping else None
    except (InvalidEvent, MappingError) as exc:
        raise ActionRefused(f"template {key} fails on this data: {exc}") from None
    message = OutgoingMessage(0, recipient, text, key, found.language)
    return {"key": key, "text": text, "text_payload": text_message_payload(message),
            "template_payload": template_message_payload(recipient, call) if call else None}


def _recipient(data: dict[str, Any], region: str) -> str:
    if "phone" not in data:
        return str(SAMPLE_VARIABLES["phone"])
    try:
        return normalize_phone(str(data["phone"]), region)
    except InvalidEvent as exc:
        raise ActionRefused(f"--data phone: {exc.detail}") from None
