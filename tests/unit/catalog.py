"""The seeded catalogue as a planning Catalog, without a database."""

from __future__ import annotations

from wanotify.consumers.notifier.planning import Catalog, RuleSpec
from wanotify.shared.db.seed import load_seed
from wanotify.shared.priority import Priority


def seeded_catalog(**template_overrides: str) -> Catalog:
    rules: dict[str, list[RuleSpec]] = {}
    for spec in load_seed("rules.toml")["rules"]:
        rules.setdefault(spec["event_type"], []).append(RuleSpec(spec.get("template"), Priority(spec["priority"])))
    templates = {key: spec["body"].strip() for key, spec in load_seed("templates.toml").items()}
    return Catalog(rules, templates | template_overrides)
