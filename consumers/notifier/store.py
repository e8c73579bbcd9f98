"""One transaction per batch: log rows for new messages, mirrors of parked events.

Inserting with ON CONFLICT DO NOTHING on (event_id, template) is the duplicate check: a
redelivered or republished event finds its rows already there and yields no new message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from consumers.notifier.planning import Catalog, EventPlan, PlannedMessage, RuleSpec
from shared.db.copies import next_copy
from shared.db.models import DeadEvent, MessageLog, Rule, Status, Template
from shared.messages import SendCommand
from shared.priority import Priority


@dataclass
class BatchResult:
    to_publish: list[SendCommand] = field(default_factory=list)
    dead_ids: dict[int, int] = field(default_factory=dict)  # plan index -> dead_events.id
    duplicates: int = 0


def load_catalog(session: Session) -> Catalog:
    rules: dict[str, list[RuleSpec]] = {}
    for rule in session.scalars(select(Rule).where(Rule.active).order_by(Rule.id)):
        rules.setdefault(rule.event_type, []).append(RuleSpec(rule.template, Priority(rule.priority or "normal")))
    templates = {t.key: t.body for t in session.scalars(select(Template).where(Template.active))}
    return Catalog(rules, templates)


def write_batch(session: Session, plans: list[EventPlan]) -> BatchResult:
    result = BatchResult()
    messages = [m for plan in plans for m in plan.messages]
    if messages:
        _insert_messages(session, messages, result)
    for index, plan in enumerate(plans):
        if plan.parked:
            result.dead_ids[index] = _insert_dead_event(session, plan)
    return result


def _insert_messages(session: Session, messages: list[PlannedMessage], result: BatchResult) -> None:
    rows = [
        {
            "event_id": m.event_id, "event_type": m.event_type, "template": m.template,
            "recipient": m.recipient, "body": m.body, "priority": m.priority.value,
        }
        for m in messages
    ]
    # One cached statement executed with many parameter sets: SQLAlchemy batches it into
    # multi-row INSERTs ("insertmanyvalues") and still returns every inserted row.
    stmt = insert(MessageLog).on_conflict_do_nothing(constraint="uq_whatsapp_logs_event_template")
    inserted = session.execute(stmt.returning(MessageLog.id, MessageLog.event_id, MessageLog.template), rows).all()
    created = {(str(r.event_id), r.template) for r in inserted}
    by_key = {(m.event_id, m.template): m for m in messages}
    for row in inserted:
        m = by_key[(str(row.event_id), row.template)]
        result.to_publish.append(SendCommand(row.id, 1, m.priority, m.event_id, m.template))
    existing = [key for key in by_key if key not in created]
    result.duplicates = len(existing)
    if existing:
        _republish_unsent(session, existing, result)


def _republish_unsent(session: Session, keys: list[tuple[str, str]], result: BatchResult) -> None:
    """Rows that exist but never got a call: their first copy may have been lost before the
    event was acked, so publish it again (a second copy is dropped by the sender as stale)."""
    rows = session.execute(
        select(MessageLog.id, MessageLog.event_id, MessageLog.template, MessageLog.priority, MessageLog.attempts,
               MessageLog.first_attempt).where(
            tuple_(MessageLog.event_id, MessageLog.template).in_(keys),
            MessageLog.status == Status.QUEUED,
            MessageLog.attempts == 0,
        )
    ).all()
    result.to_publish.extend(next_copy(row) for row in rows)


def _insert_dead_event(session: Session, plan: EventPlan) -> int:
    parked = plan.parked
    assert parked is not None
    dead = DeadEvent(
        event_id=parked.event_id, event_type=parked.event_type, reason=parked.reason,
        detail=parked.detail, body=plan.body,
    )
    session.add(dead)
    session.flush()
    return dead.id
