"""Delivery receipts from the status webhook: kept as sent, stored once, applied only forward.

What Meta sends may arrive twice (retries for up to 7 days, every subscribed app gets them),
out of order (read before delivered; Meta sends no ``delivered`` when both happen together)
and contradictory (a ``failed`` after ``delivered`` for a user with several devices). So:

- every signed body is kept as it arrived (``webhook_payloads``, one row per distinct body)
  for the retention period, so it can be replayed;
- every receipt is stored once, keyed by (wamid, status, provider timestamp); a receipt
  already stored changes nothing. One whose message was not known yet (``unknown``: the
  receipt beat the sender's commit, or the message is not ours) is tried again when the
  same receipt comes back, from a retry or a replay;
- a receipt moves its message forward only, by rank: sent → delivered → read. An older
  status arriving late is ``stale`` and changes nothing;
- ``failed`` on a ``sent`` message parks it dead (``receipt_failed``) for an admin to see
  and replay. After ``delivered`` or ``read`` it is only recorded (``late_failure``): the
  message reached a device, and parking it would invite a duplicate. A message parked by a
  ``failed`` receipt that is then reported ``delivered`` or ``read`` moves on to that status.

The rest of a payload (the user's own messages, template and number updates) is applied in
the same transaction by ``wanotify.shared.meta_events``, as idempotently.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog, Status, WebhookPayload, WebhookReceipt
from wanotify.shared.errors import PermanentError, TransientError
from wanotify.shared.meta_events import apply_changes
from wanotify.shared.meta_payloads import parse_changes, unix_time

RANK: dict[str, int] = {Status.SENT: 1, Status.DELIVERED: 2, Status.READ: 3}
DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "BERHENTI")
PARKED_BY_RECEIPT = "receipt_failed"
T = TypeVar("T")


NOT_JSON = object()  # a body that does not parse (JSON's own null is a useless payload, not a refusal)


class PayloadNotJson(PermanentError):
    """A correctly signed body that is not JSON: kept, but nothing to apply."""


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    status: str
    at: datetime  # the provider's timestamp
    error: str | None = None


@dataclass(frozen=True)
class PayloadResult:
    """What receiving (or replaying) one payload did."""

    payload_id: int
    new: bool  # False: the same body was stored before (a retry or a replay)
    counts: dict[str, int] = field(default_factory=dict)  # receipts by outcome
    events: dict[str, int] = field(default_factory=dict)  # other changes (shared.meta_events) by outcome


def receive_payload(sessions: sessionmaker[Session], body: bytes,
                    opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS) -> PayloadResult:
    """Keep a signed webhook body, then apply its receipts and other changes.

    The body is committed first, on its own, so it is there to replay even if applying fails.
    Raises ``PayloadNotJson`` (kept, not applied) or ``TransientError`` (database unavailable).
    """
    payload = _json_or_not(body)
    outcome = "received" if payload is not NOT_JSON else "not_json"
    payload_id, new = _guarded(lambda: _store_payload(sessions, body, outcome))
    if payload is NOT_JSON:
        raise PayloadNotJson("the body is not JSON")
    counts, events = _guarded(lambda: _apply_payload(sessions, payload_id, payload, opt_out_keywords))
    return PayloadResult(payload_id, new, counts, events)


def replay_payloads(sessions: sessionmaker[Session], *, since: timedelta | None = None, ids: list[int] | None = None,
                    opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS) -> list[PayloadResult]:
    """Apply stored payloads again, oldest first, through the same idempotent path."""
    query = select(WebhookPayload.id, WebhookPayload.body).order_by(WebhookPayload.id)
    if since is not None:
        query = query.where(WebhookPayload.received_at >= func.now() - since)
    if ids is not None:
        query = query.where(WebhookPayload.id.in_(ids))
    with sessions() as session:
        rows = session.execute(query).all()
    results = []
    for payload_id, body in rows:
        payload = _json_or_not(body)
        counts, events = ({}, {}) if payload is NOT_JSON else _apply_payload(sessions, payload_id, payload,
                                                                              opt_out_keywords)
        results.append(PayloadResult(payload_id, False, counts, events))
    return results


def list_payloads(session: Session, *, since: timedelta | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The stored payloads, newest first, without their bodies."""
    query = select(WebhookPayload.id, WebhookPayload.received_at, func.length(WebhookPayload.body),
                   WebhookPayload.outcome, WebhookPayload.counts, WebhookPayload.applied_at)
    if since is not None:
        query = query.where(WebhookPayload.received_at >= func.now() - since)
    rows = session.execute(query.order_by(WebhookPayload.id.desc()).limit(limit)).all()
    keys = ("id", "received_at", "bytes", "outcome", "receipts", "applied_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def prune_payloads(session: Session, retention: timedelta) -> int:
    """Drop payloads older than ``retention``; their receipts stay. Returns how many went."""
    done = session.execute(delete(WebhookPayload).where(WebhookPayload.received_at < func.now() - retention))
    return int(getattr(done, "rowcount", 0) or 0)


def parse_receipts(payload: Any) -> list[Receipt]:
    """Every well-formed status item of a webhook payload; anything malformed is skipped."""
    receipts = []
    for item in _status_items(payload):
        at = unix_time(item.get("timestamp"))
        if at is not None:
            receipts.append(Receipt(item["id"], item["status"], at, _error(item)))
    return receipts


def apply_receipt(session: Session, receipt: Receipt, payload_id: int | None = None) -> str:
    """Store one receipt and apply it if it is new; returns what it did.

    ``duplicate`` (stored before), or the stored outcome: ``moved``, ``parked``, ``stale``,
    ``late_failure``, ``unknown``.
    """
    receipt_id = session.scalar(
        insert(WebhookReceipt)
        .values(provider_message_id=receipt.provider_message_id, status=receipt.status,
                provider_timestamp=receipt.at, payload_id=payload_id, outcome="unknown", error=receipt.error)
        .on_conflict_do_nothing(constraint="uq_webhook_receipts_key")
        .returning(WebhookReceipt.id))
    if receipt_id is None:
        receipt_id = _unknown_receipt(session, receipt)
        if receipt_id is None:
            return "duplicate"
    outcome = apply_to_message(session, receipt)
    session.execute(update(WebhookReceipt).where(WebhookReceipt.id == receipt_id).values(outcome=outcome))
    return outcome


def apply_to_message(session: Session, receipt: Receipt) -> str:
    """Move the receipt's message forward if the receipt says it got further (see the module doc)."""
    row = session.scalars(select(MessageLog).where(MessageLog.provider_message_id == receipt.provider_message_id)
                          .with_for_update()).first()
    if row is None:
        return "unknown"
    if receipt.status == "failed":
        return _failed(row, receipt.error)
    target, current = RANK.get(receipt.status), _rank(row)
    if target is None or current is None or target <= current:
        return "stale"
    row.status, row.updated_at = Status(receipt.status), func.now()
    return "moved"


def _failed(row: MessageLog, error: str | None) -> str:
    if row.status == Status.SENT:
        # Accepted by the provider, then not deliverable: park it, so an admin sees it and can replay it.
        row.status, row.last_error, row.error_code = Status.DEAD, error or "failed after sending", PARKED_BY_RECEIPT
        row.updated_at = func.now()
        return "parked"
    return "late_failure" if row.status in (Status.DELIVERED, Status.READ) else "stale"


def _rank(row: MessageLog) -> int | None:
    # Parked by a failed receipt, it still was sent: a later delivered/read (multi-device) moves it on.
    if row.status == Status.DEAD and row.error_code == PARKED_BY_RECEIPT:
        return RANK[Status.SENT]
    return RANK.get(row.status)


def _unknown_receipt(session: Session, receipt: Receipt) -> int | None:
    """The id of the stored copy of this receipt if its message was not known then, else None."""
    return session.scalar(
        select(WebhookReceipt.id).where(
            WebhookReceipt.provider_message_id == receipt.provider_message_id,
            WebhookReceipt.status == receipt.status, WebhookReceipt.provider_timestamp == receipt.at,
            WebhookReceipt.outcome == "unknown").with_for_update())


def _store_payload(sessions: sessionmaker[Session], body: bytes, outcome: str) -> tuple[int, bool]:
    digest = hashlib.sha256(body).hexdigest()
    with transaction(sessions) as session:
        new_id = session.scalar(insert(WebhookPayload).values(body=body, body_sha256=digest, outcome=outcome)
                                .on_conflict_do_nothing(index_elements=["body_sha256"]).returning(WebhookPayload.id))
        if new_id is not None:
            return new_id, True
        return session.scalar(select(WebhookPayload.id).where(WebhookPayload.body_sha256 == digest)) or 0, False


def _apply_payload(sessions: sessionmaker[Session], payload_id: int, payload: Any,
                   opt_out_keywords: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
    receipts, changes = parse_receipts(payload), parse_changes(payload, str(payload_id))
    # Sorted by message (stably), so two payloads lock the same messages in the same order.
    with transaction(sessions) as session:
        counts = Counter(apply_receipt(session, r, payload_id)
                         for r in sorted(receipts, key=lambda r: r.provider_message_id))
        events = apply_changes(session, changes, opt_out_keywords, payload_id) if changes else Counter()
        # The outcomes' names do not overlap, so one column holds both.
        session.execute(update(WebhookPayload).where(WebhookPayload.id == payload_id)
                        .values(outcome="applied", counts=dict(counts + events), applied_at=func.now()))
    return dict(counts), dict(events)


def _guarded(work: Callable[[], T]) -> T:
    try:
        return work()
    except (DBAPIError, PoolTimeout) as exc:  # down, restarting, or every connection busy
        raise TransientError(f"database unavailable: {type(getattr(exc, 'orig', exc)).__name__}") from exc


def _json_or_not(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # also not UTF-8
        return NOT_JSON


def _status_items(payload: Any) -> Iterator[dict[str, Any]]:
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            items = value.get("statuses") if isinstance(value, dict) else None
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and _short_str(item.get("id"), 200) and _short_str(item.get("status"), 20):
                    yield item


def _short_str(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _error(item: dict[str, Any]) -> str | None:
    errors = item.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"({first.get('code')}) {first.get('title') or first.get('message') or ''}".strip()[:500]
    return None
