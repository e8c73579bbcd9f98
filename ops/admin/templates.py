"""Editing message templates: checked before saving, every change kept in their history.

A template is checked against what its events provide: the rules say which event types use
it, and the event catalogue (``wanotify.shared.events.SCHEMAS``) which fields each type's data has
(plus ``event_id`` and ``occurred_at``). A template no rule names is sent through
``notification.requested``, whose events carry any variables: it is checked for syntax,
filters and an empty body, and rendered with placeholders that take any type
(``wanotify.shared.templates.Placeholder``; a use that needs a text gets the placeholder's
text), so it is refused for what fails whatever the values, and for one call that needs a
number in one argument and a text in another (each try gives a call's placeholders one kind).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from sqlalchemy import select
from sqlalchemy.orm import Session

from wanotify.ops.admin.audit import record
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.db.models import Rule, Template, TemplateChange
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.events import SCHEMAS, NotificationRequestedData
from wanotify.shared.meta_templates import LANGUAGE
from wanotify.shared.templates import SAMPLE_VARIABLES, Placeholder, check_syntax, environment, trial_render

# What notification.requested may name as its template (``wanotify.shared.events``).
KEY = re.compile(r"^[a-z0-9_]{1,100}$")
ENVELOPE_VARIABLES = frozenset({"event_id", "occurred_at"})
SNAPSHOT_FIELDS = ("body", "language", "active", "meta_name", "meta_language", "meta_category", "meta_params")


@dataclass(frozen=True)
class Provided:
    """The variables a template's events provide: ``names`` None means any (notification.requested)."""

    event_types: tuple[str, ...]
    names: frozenset[str] | None

    def sample(self, body: str) -> dict[str, Any]:
        """Sample data as the template's events would carry it, for the names it uses (and, for
        catalogue events, every name they provide): the catalogue's values for its events; for
        free variables, whose type only the event will tell, placeholders that take any use
        (``sample_render`` gives a use a placeholder cannot take its text)."""
        used = _used_variables(body)
        return self.values(used if self.names is None else self.names | used)

    def values(self, names: Iterable[str]) -> dict[str, Any]:
        """The catalogue's sample value of each name; for free variables a ``Placeholder``. The
        envelope's two always have theirs: an event of notification.requested may bring its own
        ``occurred_at`` in ``variables``, but most bring none and get the envelope's datetime,
        so a template must suit that one (``{{ occurred_at[:10] }}`` would fail on them)."""
        if self.names is None:
            return {name: SAMPLE_VARIABLES[name] if name in ENVELOPE_VARIABLES else Placeholder(name)
                    for name in sorted(names)}
        return {name: SAMPLE_VARIABLES.get(name, Placeholder(name)) for name in sorted(names)}


def sample_render(body: str, events: Provided, data: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The message ``body`` makes with ``events``' sample data (``extra`` under it, ``data``
    over it), and those variables; ``InvalidEvent`` when it does not render. Placeholders are
    tried use by use (``trial_render``): each use that cannot take one gets its text
    (``<name>``: what a JSON filter or a URL encoder takes), so a template that mixes uses
    (``{% if points >= 100 %}…{{ code | urlencode }}``) renders; a use that fails with the
    text too is refused."""
    variables = {**(extra or {}), **events.sample(body), **(data or {})}
    return trial_render(body, variables), variables


def provided(session: Session, key: str) -> Provided:
    """What the events that use template ``key`` provide to it."""
    types = tuple(sorted(set(session.scalars(select(Rule.event_type).where(Rule.template == key)))))
    names: frozenset[str] | None = None
    for event_type in types:
        schema = SCHEMAS.get(event_type)
        if schema is None or schema is NotificationRequestedData:
            continue  # outside the catalogue, data fields are whatever the upstream sends
        fields = frozenset(schema.model_fields) | ENVELOPE_VARIABLES
        names = fields if names is None else names & fields
    return Provided(types, names)


def _used_variables(body: str) -> set[str]:
    env = environment()
    try:
        return set(meta.find_undeclared_variables(env.parse(body))) - set(env.globals)
    except TemplateSyntaxError:
        return set()


def check_key(key: str) -> None:
    if not KEY.fullmatch(key):
        raise ActionRefused(f"template key {key!r} may use only a-z, 0-9 and _ (1-100 characters), "
                            "e.g. payment_reminder")


def check(session: Session, key: str, body: str) -> str:
    """Refuse a template that would fail for its events; returns its message for sample data."""
    check_key(key)
    if not body.strip():
        raise ActionRefused("the template is empty — write the message text")
    try:
        check_syntax(body)
    except InvalidEvent as exc:
        raise ActionRefused(exc.detail) from None
    tree = environment().parse(body)
    _check_names(tree)
    events = provided(session, key)
    _check_variables(tree, events)
    try:
        return sample_render(body, events)[0]
    except InvalidEvent as exc:
        raise ActionRefused(f"the template fails on sample data: {exc.detail}") from None


def _check_names(tree: nodes.Template) -> None:
    env = environment()
    for kind, node_type, known in (("filter", nodes.Filter, env.filters), ("test", nodes.Test, env.tests)):
        for node in tree.find_all(node_type):
            if node.name not in known or node.name.startswith("_"):
                public = sorted(name for name in known if not name.startswith("_"))
                hint = _did_you_mean(node.name, public) or f" (known: {', '.join(public)})"
                raise ActionRefused(f"unknown {kind} {node.name!r}{hint}")


def _check_variables(tree: nodes.Template, events: Provided) -> None:
    if events.names is None:
        return
    env = environment()
    unknown = sorted(set(meta.find_undeclared_variables(tree)) - set(env.globals) - events.names)
    if unknown:
        name = unknown[0]
        raise ActionRefused(
            f"{name!r} is not a variable of {', '.join(events.event_types)} events{_did_you_mean(name, events.names)}; "
            f"they provide: {', '.join(sorted(events.names))}")


def _did_you_mean(name: str, choices: frozenset[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def overview(session: Session) -> list[dict[str, Any]]:
    """Every template with the event types whose rules use it (none: notification.requested)."""
    used: dict[str, list[str]] = {}
    for event_type, template in session.execute(select(Rule.event_type, Rule.template).order_by(Rule.event_type)):
        if template is not None:
            used.setdefault(template, []).append(event_type)
    return [{"key": t.key, "language": t.language, "active": t.active, "updated_at": t.updated_at, "body": t.body,
             "event_types": used.get(t.key, [])} for t in session.scalars(select(Template).order_by(Template.key))]


def editing(session: Session, key: str) -> dict[str, Any]:
    """What an editor needs: the template (None if new), what its events provide, its history."""
    check_key(key)
    found = session.get(Template, key)
    events = provided(session, key)
    return {"key": key, "template": snapshot(found), "event_types": events.event_types,
            "variables": sorted(events.names) if events.names is not None else None,
            "history": history(session, key)}


def snapshot(t: Template | None) -> dict[str, Any] | None:
    return None if t is None else {field: getattr(t, field) for field in SNAPSHOT_FIELDS}


def save(session: Session, actor: str, key: str, body: str, *, language: str | None = None,
         active: bool | None = None, default_language: str = "id") -> dict[str, Any]:
    """Create or replace a template after ``check``; a change is kept in its history."""
    if language is not None and not LANGUAGE.fullmatch(language):
        raise ActionRefused(f"language {language!r} is not a language code such as id or en_US")
    sample = check(session, key, body)
    found = session.get(Template, key, with_for_update=True)
    before = snapshot(found)
    if found is None:
        found = Template(key=key, body=body, language=language or default_language, active=True if active is None else active)
        session.add(found)
    else:
        found.body = body
        found.language = language or found.language
        found.active = found.active if active is None else active
    changed = _log_change(session, actor, key, before, snapshot(found))
    return {"key": key, "created": before is None, "changed": changed, "sample": sample}


def set_active(session: Session, actor: str, key: str, active: bool) -> bool:
    """Switch a template on or off (an inactive template parks the events that need it)."""
    found = _existing(session, key)
    before = snapshot(found)
    found.active = active
    return _log_change(session, actor, key, before, snapshot(found))


def delete(session: Session, actor: str, key: str) -> None:
    """Delete a template no rule uses (its history stays)."""
    found = _existing(session, key)
    users = session.execute(select(Rule.event_type, Rule.active).where(Rule.template == key)).all()
    if users:
        rules = ", ".join(f"{event_type}{'' if active else ' (inactive)'}" for event_type, active in users)
        raise ActionRefused(f"template {key!r} is used by the rule(s) for {rules} — point them at another "
                            "template first")
    before = snapshot(found)
    session.delete(found)
    _log_change(session, actor, key, before, None)


def _existing(session: Session, key: str) -> Template:
    found = session.get(Template, key, with_for_update=True)
    if found is None:
        raise ActionRefused(f"there is no template {key!r} — `wanotify templates list` shows them")
    return found


def _log_change(session: Session, actor: str, key: str, before: dict[str, Any] | None,
                after: dict[str, Any] | None) -> bool:
    if before == after:
        return False
    session.add(TemplateChange(template_key=key, actor=actor, before=before, after=after))
    action = "template.create" if before is None else "template.delete" if after is None else "template.change"
    record(session, actor, action, target={"template": key})
    return True


def history(session: Session, key: str, limit: int = 50) -> list[dict[str, Any]]:
    """A template's changes, newest first: who, when, and a diff of the body and other fields."""
    query = (select(TemplateChange).where(TemplateChange.template_key == key)
             .order_by(TemplateChange.at.desc(), TemplateChange.id.desc()).limit(limit))
    return [{"id": c.id, "at": c.at, "actor": c.actor, "before": c.before, "after": c.after,
             "diff": diff(c.before, c.after)} for c in session.scalars(query)]


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """The body as a unified diff, then every other field that changed."""
    old, new = before or {}, after or {}
    lines = list(difflib.unified_diff(str(old.get("body") or "").splitlines(), str(new.get("body") or "").splitlines(),
                                      "before", "after", lineterm=""))
    for field in SNAPSHOT_FIELDS[1:]:
        if old.get(field) != new.get(field):
            lines.append(f"{field}: {old.get(field)!r} -> {new.get(field)!r}")
    return "\n".join(lines)


def preview(session: Session, key: str, body: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The message ``body`` would make for sample data (``data`` overrides it) as template ``key``,
    or the reason it would be refused: for a live preview while editing."""
    try:
        check(session, key, body)
        events = provided(session, key)
        return {"ok": True, "text": sample_render(body, events, data)[0], "event_types": events.event_types}
    except (ActionRefused, InvalidEvent) as exc:
        return {"ok": False, "error": str(exc), "event_types": provided(session, key).event_types}
