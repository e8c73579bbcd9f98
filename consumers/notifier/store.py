"""One transaction per batch: log rows for new messages, mirrors of parked events.

Inserting with ON CONFLICT DO NOTHING on (event_id, template) is the duplicate check: a
redelivered or republished event finds its rows already there and yields no new message.
Parked events are keyed the same way by the SHA-256 of their body (one ``parked`` row per
body), so an event that is parked again after a redelivery finds its row and names it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from wanotify.consumers.notifier.planning import Catalog, EventPlan, ParkedEvent, PlannedMessage, RuleSpec
from wanotify.consumers.notifier.routing import LoadCache, SenderNames, load_sender_names, route
from wanotify.shared.consent import OPTED_OUT, opt_out_covers, opted_out_reason
from wanotify.shared.db.copies import next_copy
from wanotify.shared.db.models import Broadcast, DeadEvent, MessageLog, Recipient, Rule, Status, Template
from wanotify.shared.events import MAX_EVENT_BYTES
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority

# A body over MAX_EVENT_BYTES keeps only its head here; the whole body is on the dead queue.
PARKED_HEAD_BYTES = 4096


@dataclass
class BatchResult:
    to_publish: list[SendCommand] = field(default_factory=list)
    dead_ids: dict[int, int] = field(default_factory=dict)  # plan index -> dead_events.id
    duplicates: int = 0


def load_catalog(session: Session) -> Catalog:
    rules: dict[str, list[RuleSpec]] = {}
    for rule in session.scalars(select(Rule).where(Rule.active).order_by(Rule.id)):
        rules.setdefault(rule.event_type, []).append(
            RuleSpec(rule.template, Priority(rule.priority or "normal"), rule.sender))
    templates = {t.key: t.body for t in session.scalars(select(Template).where(Template.active))}
    return Catalog(rules, templates, load_sender_names(session))


def write_batch(session: Session, plans: list[EventPlan], opt_out_scope: str = "marketing",
                senders: SenderNames | None = None, loads: LoadCache | None = None) -> BatchResult:
    """Write a batch's messages (each routed to its sender) and parked events. ``senders`` is
    the catalog's (read with the plans); without it they are read here. ``loads``: the
    notifier's cached sender load, for first contacts."""
    result = BatchResult()
    broadcasts = park_unknown_broadcasts(session, plans)
    messages = [m for plan in plans for m in plan.messages]
    if messages:
        withdrawn = {broadcast_id for broadcast_id, cancelled in broadcasts.items() if cancelled}
        _insert_messages(session, messages, result, opt_out_scope, senders or load_sender_names(session), loads,
                         withdrawn)
    parked = {index: plan for index, plan in enumerate(plans) if plan.parked}
    if parked:
        result.dead_ids = park_events(session, parked)
    return result


def _insert_messages(session: Session, messages: list[PlannedMessage], result: BatchResult,
                     opt_out_scope: str, senders: SenderNames, loads: LoadCache | None, withdrawn: set[int]) -> None:
    stopped = _stopped_by_opt_out(session, messages, opt_out_scope)
    routed = route(session, [(m.recipient, m.sender) for m in messages], senders, loads)

    def status_columns(m: PlannedMessage) -> dict[str, Any]:
        if (m.event_id, m.template) in stopped:
            return _OPTED_OUT_ROW | {"last_error": opted_out_reason(opt_out_scope)}
        if m.broadcast_id in withdrawn:
            return _BROADCAST_CANCELLED_ROW | {"last_error": f"broadcast {m.broadcast_id} was cancelled"}
        return _QUEUED_ROW

    rows = [
        {
            "event_id": m.event_id, "event_type": m.event_type, "template": m.template,
            "recipient": m.recipient, "body": m.body, "priority": m.priority.value, "variables": m.variables,
            "sender": sender, "broadcast_id": m.broadcast_id, **status_columns(m),
        }
        for m, sender in zip(messages, routed, strict=True)
    ]
    # One cached statement executed with many parameter sets: SQLAlchemy batches it into
    # multi-row INSERTs ("insertmanyvalues") and still returns every inserted row. It runs on
    # the session's connection as a plain statement: the ORM's bulk insert, which has no
    # objects to keep here, spent more CPU on the rows than the insert itself.
    inserted = session.connection().execute(_message_insert(), rows).all()
    created = {(str(r.event_id), r.template) for r in inserted}
    by_key = {(m.event_id, m.template): m for m in messages}
    for row in inserted:
        m = by_key[(str(row.event_id), row.template)]
        if (m.event_id, m.template) not in stopped and m.broadcast_id not in withdrawn:
            result.to_publish.append(SendCommand(row.id, 1, m.priority, m.event_id, m.template, sender=row.sender))
    existing = [key for key in by_key if key not in created]
    result.duplicates = len(existing)
    if existing:
        _republish_unsent(session, existing, result)


@cache
def _message_insert() -> ReturningInsert[int, UUID, str, str | None]:
    return (insert(MessageLog).on_conflict_do_nothing(constraint="uq_whatsapp_logs_event_template")
            .returning(MessageLog.id, MessageLog.event_id, MessageLog.template, MessageLog.sender))


# Every row names the same columns, so the insert stays one batched statement.
_QUEUED_ROW: dict[str, Any] = {"status": Status.QUEUED.value, "error_code": None, "last_error": None}
_OPTED_OUT_ROW: dict[str, Any] = {"status": Status.CANCELLED.value, "error_code": OPTED_OUT}
_BROADCAST_CANCELLED_ROW: dict[str, Any] = {"status": Status.CANCELLED.value, "error_code": "broadcast_cancelled"}


def park_unknown_broadcasts(session: Session, plans: list[EventPlan]) -> dict[int, bool]:
    """Park (``invalid_data``) each event whose data names a broadcast that does not exist,
    which the log's foreign key would refuse with raw SQL, failing its whole batch; returns
    the batch's broadcasts, id -> cancelled (a row of a cancelled one that reaches the notifier
    only after `broadcast cancel` is logged cancelled, never queued). No query without broadcasts."""
    ids = {m.broadcast_id for plan in plans for m in plan.messages if m.broadcast_id is not None}
    if not ids:
        return {}
    found = session.execute(select(Broadcast.id, Broadcast.cancelled_at).where(Broadcast.id.in_(ids)))
    broadcasts = {broadcast_id: cancelled_at is not None for broadcast_id, cancelled_at in found}
    for plan in plans:
        unknown = next((m for m in plan.messages if m.broadcast_id is not None and m.broadcast_id not in broadcasts),
                       None)
        if unknown is not None:
            plan.messages, plan.parked = [], ParkedEvent(
                "invalid_data", f"{unknown.event_type} data: broadcast_id: no broadcast {unknown.broadcast_id}",
                unknown.event_id, unknown.event_type)
    return broadcasts


def _stopped_by_opt_out(session: Session, messages: list[PlannedMessage], scope: str) -> set[tuple[str, str]]:
    """The (event_id, template) of messages an opt-out stops: logged ``cancelled``, never queued.
    One query per batch; the templates' categories are read only when someone opted out."""
    phones = {m.recipient for m in messages}
    opted = set(session.scalars(select(Recipient.phone).where(Recipient.phone.in_(phones),
                                                              Recipient.opted_out_at.is_not(None))))
    if not opted:
        return set()
    candidates = [m for m in messages if m.recipient in opted]
    found = session.execute(select(Template.key, Template.meta_category).where(
        Template.key.in_({m.template for m in candidates})))
    categories = {key: category for key, category in found}
    return {(m.event_id, m.template) for m in candidates
            if opt_out_covers(scope, category=categories.get(m.template), event_type=m.event_type,
                              priority=m.priority.value)}


def _republish_unsent(session: Session, keys: list[tuple[str, str]], result: BatchResult) -> None:
    """Rows that exist but never got a call: their first copy may have been lost before the
    event was acked, so publish it again (a second copy is dropped by the sender as stale)."""
    rows = session.execute(
        select(MessageLog.id, MessageLog.event_id, MessageLog.template, MessageLog.priority, MessageLog.attempts,
               MessageLog.first_attempt, MessageLog.sender).where(
            tuple_(MessageLog.event_id, MessageLog.template).in_(keys),
            MessageLog.status == Status.QUEUED,
            MessageLog.attempts == 0,
        )
    ).all()
    result.to_publish.extend(next_copy(row) for row in rows)


def park_events(session: Session, plans: dict[int, EventPlan]) -> dict[int, int]:
    """Mirror parked events in ``dead_events``, once per body; returns plan index -> row id.

    A body already parked (a redelivery, a copy published twice) keeps its existing row, so
    every copy on the dead queue names the same row.
    """
    rows: dict[str, dict[str, Any]] = {}
    shas: dict[int, str] = {}
    for index, plan in plans.items():
        shas[index] = hashlib.sha256(plan.body).hexdigest()
        rows.setdefault(shas[index], _dead_row(plan, shas[index]))
    ids: dict[str, int] = {}
    for _ in range(3):  # a conflicting row may be replayed in between: then insert again
        ids |= _park_again(session, [row for sha, row in rows.items() if sha not in ids])
        ids |= _insert_parked(session, [row for sha, row in rows.items() if sha not in ids])
        ids |= _existing_parked(session, [sha for sha in rows if sha not in ids])
        if len(ids) == len(rows):
            break
    return {index: ids[sha] for index, sha in shas.items()}


def _dead_row(plan: EventPlan, sha: str) -> dict[str, Any]:
    parked = plan.parked
    assert parked is not None
    truncated = len(plan.body) > MAX_EVENT_BYTES
    return {
        "event_id": parked.event_id, "event_type": parked.event_type, "reason": parked.reason,
        "detail": parked.detail, "body": plan.body[:PARKED_HEAD_BYTES] if truncated else plan.body,
        "body_sha256": sha, "body_size": len(plan.body), "body_truncated": truncated,
    }


def _park_again(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """A replayed event that is parked again gets its row back, with the new reason: one event
    keeps one ``e<id>`` however often an admin replays it (unless a copy is parked already)."""
    if not rows:
        return {}
    by_sha = {row["body_sha256"]: row for row in rows}
    latest = session.execute(select(DeadEvent.body_sha256, func.max(DeadEvent.id)).where(
        DeadEvent.body_sha256.in_(by_sha), DeadEvent.status == "replayed").group_by(DeadEvent.body_sha256))
    ids: dict[str, int] = {}
    for sha, dead_id in latest.all():
        parked = select(DeadEvent.id).where(DeadEvent.body_sha256 == sha, DeadEvent.status == "parked").exists()
        row = by_sha[sha]
        again = session.execute(update(DeadEvent).where(DeadEvent.id == dead_id, DeadEvent.status == "replayed", ~parked)
                                .values(status="parked", reason=row["reason"], detail=row["detail"], parked_at=func.now())
                                .returning(DeadEvent.id)).first()
        if again is not None:
            ids[str(sha)] = dead_id
    return ids


def _insert_parked(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    if not rows:
        return {}
    stmt = insert(DeadEvent).on_conflict_do_nothing(
        index_elements=[DeadEvent.body_sha256], index_where=DeadEvent.status == "parked")
    inserted = session.execute(stmt.returning(DeadEvent.id, DeadEvent.body_sha256), rows).all()
    return {r.body_sha256: r.id for r in inserted}


def _existing_parked(session: Session, shas: list[str]) -> dict[str, int]:
    if not shas:
        return {}
    found = session.execute(select(DeadEvent.body_sha256, DeadEvent.id).where(
        DeadEvent.body_sha256.in_(shas), DeadEvent.status == "parked"))
    return {str(sha): dead_id for sha, dead_id in found}
