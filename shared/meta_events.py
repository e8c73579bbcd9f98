"""Applying what Meta reports (inbound messages, template and number updates), once and in order.

Meta retries a webhook for days and every subscribed app gets the retries, so each change
is applied once: an inbound message by its id, an update by its content and time (see
``wanotify.shared.meta_payloads``), recorded in ``meta_event_keys`` in the same transaction. A second
copy, or a replay, is a ``duplicate_event`` and changes nothing.

Order: an update that carries Meta's time (the entry's ``time``) does not overwrite what a
newer one already said (``stale_update``); one without a time is applied in arrival order. An
inbound message only ever moves the window forward.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from wanotify.shared import recipients
from wanotify.shared.db.models import AccountEvent, MetaEventKey, MetaTemplate, PhoneNumberState
from wanotify.shared.meta_payloads import AccountUpdate, Inbound, MetaChanges, TemplateUpdate

# Keys outlive the payloads, and Meta's retries (for up to 7 days), by a margin.
META_RETRIES_FOR = timedelta(days=7)
KEY_RETENTION_MARGIN = timedelta(days=1)


def apply_changes(session: Session, changes: MetaChanges, opt_out_keywords: Iterable[str],
                  payload_id: int | None = None) -> Counter[str]:
    """Apply every change in ``changes``; returns how many did what (by outcome)."""
    keywords = {word.strip().upper() for word in opt_out_keywords}
    counts: Counter[str] = Counter()
    # Sorted, so two payloads touching the same rows lock them in the same order.
    for message in sorted(changes.inbound, key=lambda m: (m.phone, m.message_id)):
        counts[apply_inbound(session, message, keywords, payload_id)] += 1
    for update in sorted(changes.templates, key=lambda u: (u.name, u.language)):
        counts[apply_template_update(session, update, payload_id)] += 1
    for account in sorted(changes.account, key=lambda a: a.phone_number or ""):
        counts[apply_account_update(session, account, payload_id)] += 1
    return counts


def apply_inbound(session: Session, message: Inbound, keywords: set[str], payload_id: int | None = None) -> str:
    """The user wrote: their window opens; an opt-out keyword opts them out. ``inbound``, ``opted_out``
    or ``duplicate_event``."""
    if not _first_time(session, f"message:{message.message_id}", "messages", payload_id):
        return "duplicate_event"
    recipients.record_inbound(session, message.phone, message.at)
    if message.text is not None and message.text.strip().upper() in keywords:
        recipients.opt_out(session, message.phone, "keyword")
        return "opted_out"
    return "inbound"


def apply_template_update(session: Session, update: TemplateUpdate, payload_id: int | None = None) -> str:
    """Store a template's new status, quality or category: ``template``, ``stale_update`` or
    ``duplicate_event``."""
    if not _first_time(session, update.key, "template", payload_id):
        return "duplicate_event"
    applied = False
    if update.status is not None:
        applied |= _upsert_template(session, update, {"status": update.status, "reason": update.reason}, "status_at")
    if update.quality is not None:
        applied |= _upsert_template(session, update, {"quality": update.quality}, "quality_at")
    if update.category is not None:
        applied |= _upsert_template(session, update, {"category": update.category}, None)
    return "template" if applied else "stale_update"


def _upsert_template(session: Session, update: TemplateUpdate, values: dict[str, Any], clock: str | None) -> bool:
    """Insert or update one template's ``values``, unless the row already holds something newer."""
    row = {"name": update.name, "language": update.language, "meta_id": update.meta_id, **values}
    if clock:
        row[clock] = update.at
    stmt = insert(MetaTemplate).values(row)
    changes: dict[str, Any] = {k: stmt.excluded[k] for k in values} | {
        "meta_id": func.coalesce(stmt.excluded.meta_id, MetaTemplate.meta_id), "updated_at": func.now()}
    where = None
    if clock:
        column = getattr(MetaTemplate, clock)
        changes[clock] = func.coalesce(stmt.excluded[clock], column)
        where = or_(column.is_(None), stmt.excluded[clock].is_(None), stmt.excluded[clock] >= column)
    done = session.execute(stmt.on_conflict_do_update(index_elements=["name", "language"], set_=changes, where=where)
                           .returning(MetaTemplate.name))
    return done.first() is not None


def apply_account_update(session: Session, update: AccountUpdate, payload_id: int | None = None) -> str:
    """Keep the event; for a number's update, its quality and limit too. ``account``, ``stale_update``
    (kept, but older than the number's state) or ``duplicate_event``."""
    if not _first_time(session, update.key, update.field, payload_id):
        return "duplicate_event"
    session.add(AccountEvent(field=update.field, event=update.event, detail=update.detail))
    if update.phone_number is None:
        return "account"
    return "account" if _update_number(session, update) else "stale_update"


def _update_number(session: Session, update: AccountUpdate) -> bool:
    values: dict[str, Any] = {"quality": update.quality, "messaging_limit": update.messaging_limit,
                              "limit_lowered": update.limit_lowered}
    values = {k: v for k, v in values.items() if v is not None}
    row = {"phone_number": update.phone_number, "reported_at": update.at, "last_event": update.event, **values}
    stmt = insert(PhoneNumberState).values(row)
    changes: dict[str, Any] = {k: stmt.excluded[k] for k in values} | {
        "last_event": stmt.excluded.last_event, "updated_at": func.now(),
        "reported_at": func.coalesce(stmt.excluded.reported_at, PhoneNumberState.reported_at)}
    newer = or_(PhoneNumberState.reported_at.is_(None), stmt.excluded.reported_at.is_(None),
                stmt.excluded.reported_at >= PhoneNumberState.reported_at)
    done = session.execute(stmt.on_conflict_do_update(index_elements=["phone_number"], set_=changes, where=newer)
                           .returning(PhoneNumberState.phone_number))
    return done.first() is not None


def _first_time(session: Session, key: str, field: str, payload_id: int | None) -> bool:
    """Record ``key`` as applied; False if it was already (a concurrent copy waits for the first's commit)."""
    stmt = insert(MetaEventKey).values(key=key[:200], field=field[:60], payload_id=payload_id)
    return session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]).returning(MetaEventKey.key)).first() is not None


def prune_keys(session: Session, retention: timedelta) -> int:
    """Forget keys older than their payloads and Meta's retries (plus a margin); returns how many went."""
    keep = max(retention, META_RETRIES_FOR) + KEY_RETENTION_MARGIN
    done = session.execute(delete(MetaEventKey).where(MetaEventKey.received_at < func.now() - keep))
    return int(getattr(done, "rowcount", 0) or 0)
