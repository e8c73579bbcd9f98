"""Seed default templates and rules from ``shared/seed/*.toml`` without overwriting edits."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.shared.db.models import Rule, Template
from wanotify.shared.priority import Priority

SEED_DIR = Path(__file__).resolve().parent.parent / "seed"


def load_seed(name: str) -> dict[str, Any]:
    with (SEED_DIR / name).open("rb") as handle:
        return tomllib.load(handle)


def seed_defaults(session: Session) -> dict[str, int]:
    """Insert missing templates and rules; returns how many of each were added."""
    added = {"templates": 0, "rules": 0}
    for key, spec in load_seed("templates.toml").items():
        stmt = insert(Template).values(key=key, language=spec.get("language", "id"), body=spec["body"].strip())
        added["templates"] += session.execute(stmt.on_conflict_do_nothing()).rowcount  # type: ignore[attr-defined]
    for spec in load_seed("rules.toml")["rules"]:
        Priority(spec["priority"])  # a typo in the rules file fails the migration, loudly
        exists = session.scalar(
            select(Rule.id).where(Rule.event_type == spec["event_type"], Rule.template.is_not_distinct_from(spec.get("template")))
        )
        if exists is None:
            session.add(Rule(event_type=spec["event_type"], template=spec.get("template"), priority=spec["priority"]))
            added["rules"] += 1
    return added
