"""What Meta last said about our templates and numbers, read for status, metrics and sync.

The database is the one source: the webhook server, ``templates sync`` and every process's
metrics read the same rows, so a gauge says the same thing whichever process serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wanotify.shared.db.models import MetaTemplate, PhoneNumberState, Template
from wanotify.shared.metrics import MetaStateMetrics

APPROVED = "APPROVED"
UNKNOWN = "UNKNOWN"  # mapped, but Meta has not told us anything about it yet
LOW_QUALITY = frozenset({"RED", "FLAGGED"})


@dataclass(frozen=True)
class Mapping:
    """A local template mapped to an approved Meta template (sent outside the 24-hour window)."""

    key: str
    name: str
    language: str
    params: Any  # ``templates.meta_params``: how the event's data fills the template's parameters


def mappings(session: Session) -> list[Mapping]:
    """Every active local template mapped to a Meta template (a name and a language)."""
    rows = session.scalars(select(Template).where(Template.meta_name.is_not(None), Template.meta_language.is_not(None),
                                                  Template.active.is_(True)).order_by(Template.key))
    return [Mapping(t.key, t.meta_name or "", t.meta_language or "", t.meta_params) for t in rows]


def template_states(session: Session) -> list[dict[str, Any]]:
    """Each mapped template with what Meta last said of it (status ``UNKNOWN`` if nothing)."""
    known = {(t.name, t.language): t for t in session.scalars(select(MetaTemplate))}
    states = []
    for mapping in mappings(session):
        meta = known.get((mapping.name, mapping.language))
        states.append({
            "template": mapping.key, "meta_name": mapping.name, "language": mapping.language,
            "status": (meta.status if meta else None) or UNKNOWN, "quality": meta.quality if meta else None,
            "reason": meta.reason if meta else None, "status_at": meta.status_at if meta else None,
        })
    return states


def not_approved(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in states if s["status"] != APPROVED]


def number_states(session: Session) -> list[dict[str, Any]]:
    """Each sending number Meta reported on: quality, messaging limit, whether the limit was lowered."""
    rows = session.scalars(select(PhoneNumberState).order_by(PhoneNumberState.phone_number))
    return [{"phone_number": r.phone_number, "quality": r.quality, "messaging_limit": r.messaging_limit,
             "limit_lowered": r.limit_lowered, "last_event": r.last_event, "reported_at": r.reported_at}
            for r in rows]


def number_needs_attention(state: dict[str, Any]) -> bool:
    return (state["quality"] or "").upper() in LOW_QUALITY or bool(state["limit_lowered"])


def refresh_metrics(metrics: MetaStateMetrics, session: Session) -> None:
    """Set the Meta gauges from the database."""
    metrics.update(template_states(session), number_states(session))
