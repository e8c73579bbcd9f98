"""Broadcasts: one template sent to every row of a CSV file (contract section 7).

A broadcast is keyed by the SHA-256 of its template, priority, sender and the file's bytes,
and each row becomes a ``notification.requested`` event whose event_id is derived from that
key and the row's phone number. The notifier keeps one log row per (event_id, template), so
running the same file twice sends each row once, and a run cut short can simply be run again.

Each row is checked exactly as the notifier will check its event (the same schemas, phone
parsing and sandboxed render, through ``plan_event``), so the dry run's counts are the real
run's counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import meta
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.notifier.planning import Catalog, plan_event
from wanotify.consumers.notifier.store import load_catalog
from wanotify.ops.admin.audit import record
from wanotify.ops.admin.broadcast_csv import (
    CheckedRow,
    CsvScan,
    InvalidRow,
    NoProgress,
    Progress,
    RowCheck,
    ValidRow,
    file_digest,
)
from wanotify.ops.admin.broadcast_eta import estimate_seconds
from wanotify.ops.admin.errors import ActionRefused
from wanotify.producers.envelope import prepare
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Broadcast, MessageLog, Status
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.phone import normalize_phone
from wanotify.shared.priority import Priority
from wanotify.shared.senders import active_senders
from wanotify.shared.templates import environment
from wanotify.shared.topology import Topology

EVENT_TYPE = "notification.requested"
# Variables every event carries, so a template may use them without a column.
ENVELOPE_VARIABLES = frozenset({"event_id", "occurred_at"})
# Rows are checked against the log and published this many at a time.
BATCH = 500
# What a cancel stops: not yet called (waiting, or failed and waiting for a retry).
CANCELLABLE = (Status.QUEUED, Status.FAILED)
GONE = (Status.SENT, Status.DELIVERED, Status.READ)
REMAINING = (Status.QUEUED, Status.FAILED, Status.PENDING)
# ``show`` lists the statuses in the order a message goes through them.
SHOWN = (Status.QUEUED, Status.PENDING, Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED, Status.DEAD,
         Status.CANCELLED)


@dataclass(frozen=True)
class BroadcastRequest:
    path: Path
    template: str
    priority: Priority = Priority.LOW
    sender: str | None = None

    def key_prefix(self) -> bytes:
        return f"{self.template}\0{self.priority.value}\0{self.sender or ''}\0".encode()

    def describe(self) -> dict[str, Any]:
        return {"file": str(self.path), "template": self.template, "priority": self.priority.value,
                "sender": self.sender}


def row_event_id(key: str, phone: str) -> str:
    """The event_id of a broadcast's row: the same file, options and number give the same id."""
    return str(uuid.uuid5(uuid.UUID(hex=key[:32]), phone))


def dry_run(sessions: sessionmaker[Session], settings: Settings, request: BroadcastRequest,
            progress: Progress | None = None) -> dict[str, Any]:
    """What ``create`` would queue: the rows sorted out, three previews and the ETA; nothing is sent."""
    progress = progress or NoProgress()
    key = file_digest(request.path, request.key_prefix(), progress)
    with transaction(sessions) as session:
        catalog = _checked_catalog(session, settings, request)
        existing = session.scalar(select(Broadcast.id).where(Broadcast.key == key))
    scan = _scan(request, catalog, settings.default_region, key, progress, "checking")
    for _ in scan.valid_rows():
        pass
    with transaction(sessions) as session:
        eta = _eta(session, settings, request.sender, scan.report.valid)
    return {"dry_run": True, **request.describe(), "existing_broadcast_id": existing, **scan.report.as_dict(),
            "eta_seconds": eta}


def create(sessions: sessionmaker[Session], settings: Settings, actor: str, request: BroadcastRequest,
           progress: Progress | None = None) -> dict[str, Any]:
    """Queue every valid row (once per broadcast and phone number, however often this runs); audited."""
    progress = progress or NoProgress()
    key = file_digest(request.path, request.key_prefix(), progress)
    with transaction(sessions) as session:
        catalog = _checked_catalog(session, settings, request)
        broadcast_id = _find_or_add(session, request, key, actor)
    scan = _scan(request, catalog, settings.default_region, key, progress, "queueing")
    queued = already = 0
    with EventPublisher(settings.amqp_url, settings.namespace, topology=Topology.of(settings), source="broadcast") as publisher:
        for batch in _batches(scan.valid_rows()):
            done, skipped = _publish(sessions, publisher, request, broadcast_id, batch)
            queued, already = queued + done, already + skipped
    report = scan.report
    with transaction(sessions) as session:
        session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(
            total_rows=report.rows, valid_rows=report.valid))
        record(session, actor, "broadcast.create", count=queued, target={
            "broadcast_id": broadcast_id, "template": request.template, "file": request.path.name},
            detail=f"{queued} queued, {already} already queued")
        eta = _eta(session, settings, request.sender, queued)
    return {"dry_run": False, **request.describe(), "broadcast_id": broadcast_id, "queued": queued,
            "already_queued": already, **report.as_dict(), "eta_seconds": eta}


def _checked_catalog(session: Session, settings: Settings, request: BroadcastRequest) -> Catalog:
    """The notifier's rules and templates, after refusing what would fail every row."""
    catalog = load_catalog(session)
    if request.template not in catalog.templates:
        raise ActionRefused(f"template {request.template!r} does not exist or is not active — see `wanotify "
                            "templates list`, or create it with `wanotify templates set`")
    if not catalog.rules.get(EVENT_TYPE):
        raise ActionRefused(f"no active rule handles {EVENT_TYPE} events, so the notifier would park every row — "
                            "run `wanotify migrate` to restore the default rules")
    if request.sender is not None:
        names = [s.name for s in active_senders(session, settings)]
        if request.sender not in names:
            raise ActionRefused(f"there is no active sender {request.sender!r} (active: {', '.join(names)}) — "
                                "see `wanotify senders list`")
    return catalog


def template_columns(body: str) -> set[str]:
    """The variables a template uses that a CSV must supply as columns."""
    env = environment()
    return set(meta.find_undeclared_variables(env.parse(body))) - set(env.globals) - ENVELOPE_VARIABLES


def _scan(request: BroadcastRequest, catalog: Catalog, region: str, key: str, progress: Progress,
          phase: str) -> CsvScan:
    required = template_columns(catalog.templates[request.template])
    return CsvScan(request.path, row_check(catalog, region, key, request), required, progress, phase)


def row_check(catalog: Catalog, region: str, key: str, request: BroadcastRequest) -> RowCheck:
    """Checks a row as the notifier will check its event: the event built and planned for real."""
    def check(raw_phone: str, variables: dict[str, str]) -> CheckedRow:
        try:
            phone = normalize_phone(raw_phone, region)
        except InvalidEvent as exc:
            raise InvalidRow(exc.detail) from None
        event_id = row_event_id(key, phone)
        body = prepare(EVENT_TYPE, event_data(request, phone, variables), event_id=event_id).body
        plan = plan_event(body, catalog, region)
        if plan.parked is not None:
            raise InvalidRow(plan.parked.detail)
        text = next(m.body for m in plan.messages if m.template == request.template)
        return CheckedRow(phone, text, event_id)
    return check


def event_data(request: BroadcastRequest, phone: str, variables: dict[str, str],
               broadcast_id: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"phone": phone, "template": request.template, "variables": variables,
                            "priority": request.priority.value}
    if request.sender is not None:
        data["sender"] = request.sender
    if broadcast_id is not None:
        data["broadcast_id"] = broadcast_id
    return data


def _find_or_add(session: Session, request: BroadcastRequest, key: str, actor: str) -> int:
    added = session.execute(insert(Broadcast).values(
        key=key, name=request.path.name[:200], template=request.template, sender=request.sender,
        priority=request.priority.value, created_by=actor).on_conflict_do_nothing(index_elements=[Broadcast.key])
        .returning(Broadcast.id)).scalar()
    if added is not None:
        return int(added)
    found = session.execute(select(Broadcast.id, Broadcast.cancelled_at).where(Broadcast.key == key)).one()
    if found.cancelled_at is not None:
        raise ActionRefused(f"this file was broadcast as {found.id} and cancelled at {found.cancelled_at:%Y-%m-%d %H:%M} "
                            "UTC; nothing was queued — to send it anyway, change the file (or the priority)")
    return int(found.id)


def _batches(rows: Any) -> Any:
    batch: list[ValidRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _publish(sessions: sessionmaker[Session], publisher: EventPublisher, request: BroadcastRequest,
             broadcast_id: int, batch: list[ValidRow]) -> tuple[int, int]:
    """Publish the rows the notifier has not logged yet; (published, skipped)."""
    ids = [uuid.UUID(row.event_id) for row in batch]
    with transaction(sessions) as session:
        logged = set(session.scalars(select(MessageLog.event_id).where(
            MessageLog.event_id.in_(ids), MessageLog.template == request.template)))
    fresh = [row for row in batch if uuid.UUID(row.event_id) not in logged]
    for row in fresh:
        publisher.publish(EVENT_TYPE, event_data(request, row.phone, row.variables, broadcast_id), event_id=row.event_id)
    return len(fresh), len(batch) - len(fresh)


def _eta(session: Session, settings: Settings, sender: str | None, messages: int) -> float | None:
    senders = [s for s in active_senders(session, settings) if sender is None or s.name == sender]
    return estimate_seconds(session, settings, senders, messages)


def list_broadcasts(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The newest broadcasts, each with how many of its messages have gone and how many wait."""
    rows = session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)).all()
    counts = _status_counts(session, [b.id for b in rows])
    return [_summary(b, counts.get(b.id, {})) for b in rows]


def show(session: Session, settings: Settings, broadcast_id: int) -> dict[str, Any]:
    """One broadcast: its messages by status, those the notifier has not logged yet, and the ETA."""
    broadcast = _get(session, broadcast_id)
    counts = _status_counts(session, [broadcast_id]).get(broadcast_id, {})
    by_status = {status.value: counts.get(status.value, 0) for status in SHOWN}
    remaining = sum(by_status[s.value] for s in REMAINING)
    unlogged = _unlogged(broadcast, counts)
    eta = _eta(session, settings, broadcast.sender, remaining + unlogged)
    return {**_summary(broadcast, counts), "key": broadcast.key, "created_by": broadcast.created_by,
            "by_status": by_status, "not_yet_logged": unlogged, "eta_seconds": eta}


def cancel(session: Session, actor: str, broadcast_id: int) -> dict[str, Any]:
    """Cancel what has not been sent, in one statement (copies still on a queue are then stale and
    dropped by the sender); audited. Says how many were cancelled and how many had gone."""
    broadcast = _get(session, broadcast_id)
    result = session.execute(update(MessageLog).where(
        MessageLog.broadcast_id == broadcast_id, MessageLog.status.in_(CANCELLABLE)).values(
        status=Status.CANCELLED, updated_at=func.now(), last_error=f"broadcast cancelled by {actor}"))
    cancelled: int = result.rowcount  # type: ignore[attr-defined]
    broadcast.cancelled_at = broadcast.cancelled_at or func.now()
    counts = _status_counts(session, [broadcast_id]).get(broadcast_id, {})
    gone = sum(counts.get(s.value, 0) for s in GONE)
    in_flight = counts.get(Status.PENDING.value, 0)
    record(session, actor, "broadcast.cancel", target={"broadcast_id": broadcast_id}, count=cancelled,
           detail=f"{gone} already sent, {in_flight} in flight")
    # Rows still on their way to the notifier become messages after this statement: say so, so
    # the operator can cancel again once they have arrived.
    return {"broadcast_id": broadcast_id, "cancelled": cancelled, "already_sent": gone, "in_flight": in_flight,
            "dead": counts.get(Status.DEAD.value, 0), "not_yet_logged": _unlogged(broadcast, counts)}


def _unlogged(broadcast: Broadcast, counts: dict[str, int]) -> int:
    """Valid rows the notifier has not made a message of yet (their events are on the way)."""
    return max(0, broadcast.valid_rows - sum(counts.values()))


def _get(session: Session, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise ActionRefused(f"there is no broadcast {broadcast_id} — see `wanotify broadcast list`")
    return broadcast


def _status_counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    if not ids:
        return counts
    found = session.execute(select(MessageLog.broadcast_id, MessageLog.status, func.count()).where(
        MessageLog.broadcast_id.in_(ids)).group_by(MessageLog.broadcast_id, MessageLog.status))
    for broadcast_id, status, count in found:
        counts.setdefault(int(broadcast_id or 0), {})[status] = count
    return counts


def _summary(b: Broadcast, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": b.id, "name": b.name, "template": b.template, "priority": b.priority, "sender": b.sender,
            "rows": b.total_rows, "valid": b.valid_rows, "created_at": b.created_at, "cancelled_at": b.cancelled_at,
            "sent": sum(counts.get(s.value, 0) for s in GONE),
            "waiting": sum(counts.get(s.value, 0) for s in REMAINING),
            "failed": counts.get(Status.DEAD.value, 0), "cancelled": counts.get(Status.CANCELLED.value, 0)}
