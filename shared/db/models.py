"""Tables. The schema itself is created by Alembic migrations (``wanotify migrate``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import true as sa_true
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Status(StrEnum):
    """A message's life (contract section 2). Receipts only ever move it forward."""

    QUEUED = "queued"
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    DELIVERED = "delivered"
    READ = "read"
    CANCELLED = "cancelled"


# Logged and waiting for a call: queued, or failed with a retry to come (the partial index
# ix_whatsapp_logs_waiting holds exactly these).
WAITING_STATUSES = (Status.QUEUED, Status.FAILED)

# Statuses from which no further call is made for the current copy of a message.
FINAL_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.READ, Status.DEAD, Status.CANCELLED})


class MessageLog(Base):
    """One row per (event, template): the seed's ``whatsapp_logs``."""

    __tablename__ = "whatsapp_logs"
    __table_args__ = (
        UniqueConstraint("event_id", "template", name="uq_whatsapp_logs_event_template"),
        # The next messages to go out, in order (migration 0012: id too, for those queued together).
        Index("ix_whatsapp_logs_status_priority", "status", "priority", "queued_at", "id"),
        Index("ix_whatsapp_logs_provider_message_id", "provider_message_id"),
        # The console's message search, newest first (migration 0008).
        Index("ix_whatsapp_logs_recipient_id", "recipient", "id"),
        Index("ix_whatsapp_logs_template_id", "template", "id"),
        Index("ix_whatsapp_logs_status_id", "status", "id"),
        # What waits, counted by status, priority and sender in one index-only pass (migration 0011).
        Index("ix_whatsapp_logs_waiting", "status", "priority", "sender",
              postgresql_where=text("status IN ('queued', 'failed')")),
        Index("ix_whatsapp_logs_broadcast", "broadcast_id", "status", postgresql_where=text("broadcast_id IS NOT NULL")),
        Index("ix_whatsapp_logs_sender_status", "sender", "status"),
        # The messages the budget holds back, which status and the metrics count (migration 0010).
        Index("ix_whatsapp_logs_held", "held_until", postgresql_where=text("held_until IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(String(100))
    template: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), server_default=Status.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # The attempt at which the current retry budget began (a replay starts a new budget).
    first_attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(40))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # The sender process (``SenderProcess.sender_id``) that claimed the current call.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # The event's variables: a Meta template's parameters are filled from them at send time.
    variables: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    sent_as: Mapped[str | None] = mapped_column(String(10))  # "text" or "template"
    # The number it goes (or went) out from: a ``Sender`` name, or "default" (section 7).
    sender: Mapped[str | None] = mapped_column(String(32))
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id", ondelete="SET NULL"))
    # A message deferred without spending an attempt (recipient interval, pair rate, daily
    # limit, paused sender): until when, and why. Shown by `status` and the console as an ETA.
    held_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    held_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Attempt(Base):
    """Every provider call made for a message: the history a replay keeps."""

    __tablename__ = "whatsapp_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("whatsapp_logs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(40))


class Template(Base):
    __tablename__ = "templates"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    language: Mapped[str] = mapped_column(String(10), server_default="id")
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=sa_true())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The approved Meta template sent outside the 24-hour customer-service window.
    meta_name: Mapped[str | None] = mapped_column(String(512))
    meta_language: Mapped[str | None] = mapped_column(String(15))
    meta_category: Mapped[str | None] = mapped_column(String(20))  # utility, marketing, authentication
    meta_params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # how the event's data fills its parameters


class Recipient(Base):
    """What wanotify knows of one phone number: its customer-service window and its opt-out."""

    __tablename__ = "recipients"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opt_out_source: Mapped[str | None] = mapped_column(String(40))  # keyword, cli, meta_131050
    opt_out_reason: Mapped[str | None] = mapped_column(Text)  # an operator's words (`optouts add --reason`)
    # The sender this recipient sticks to (chosen on first contact, least loaded).
    sender: Mapped[str | None] = mapped_column(String(32))
    # The recipient interval: when the last call to them started, from any sender.
    last_call_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Meta's pair rate (131056): no call before this; the level is X in its 4^X s back-off.
    pair_backoff_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pair_backoff_level: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetaTemplate(Base):
    """An approved-template's state as Meta reports it (webhooks and ``templates sync``)."""

    __tablename__ = "meta_templates"

    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    language: Mapped[str] = mapped_column(String(15), primary_key=True)
    meta_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(20))  # APPROVED, PENDING, REJECTED, PAUSED, DISABLED
    category: Mapped[str | None] = mapped_column(String(20))
    quality: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    components: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When Meta said the stored status / quality (a webhook's entry time, a sync's time).
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quality_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountEvent(Base):
    """Something Meta reported about the account or the number (quality, limits, alerts)."""

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    field: Mapped[str] = mapped_column(String(60))
    event: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PhoneNumberState(Base):
    """The sending number's latest quality rating and messaging limit, as Meta reported them."""

    __tablename__ = "phone_number_state"

    phone_number: Mapped[str] = mapped_column(String(40), primary_key=True)
    quality: Mapped[str | None] = mapped_column(String(20))
    messaging_limit: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # Meta's time of the update
    last_event: Mapped[str | None] = mapped_column(String(60))  # FLAGGED, DOWNGRADE, UPGRADE, ...
    # True from a DOWNGRADE of the messaging limit until the next raise.
    limit_lowered: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class MetaEventKey(Base):
    """A webhook change already applied: an inbound message by its id, an update by content and time.

    Meta retries for days and every subscribed app gets the retries; this key makes a second
    copy (or a replay) change nothing. Pruned with the payloads.
    """

    __tablename__ = "meta_event_keys"
    __table_args__ = (Index("ix_meta_event_keys_received_at", "received_at"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    field: Mapped[str] = mapped_column(String(60))
    payload_id: Mapped[int | None] = mapped_column(BigInteger)  # where it came from (pruned first: no key)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Rule(Base):
    """Which event type yields which template, at which priority. One event, many rules."""

    __tablename__ = "notification_rules"
    __table_args__ = (UniqueConstraint("event_type", "template", name="uq_rules_event_template"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    # NULL template: take it from the event (notification.requested).
    template: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str | None] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean, server_default=sa_true())
    # Pins the messages of this rule to one sender (say, OTPs from one number); NULL: the recipient's own.
    sender: Mapped[str | None] = mapped_column(String(32))


class RuntimeSetting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SenderState(Base):
    """Per namespace and sender (number): when its last call started, so a restarted or new
    sender process keeps the gap; its pause; and which process holds its lease (the one
    process allowed to send for that number)."""

    __tablename__ = "sender_state"

    namespace: Mapped[str] = mapped_column(String(100), primary_key=True)
    sender: Mapped[str] = mapped_column(String(32), primary_key=True, server_default="default")
    sender_id: Mapped[str | None] = mapped_column(String(64))
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_call_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pause_reason: Mapped[str | None] = mapped_column(Text)


class SenderProcess(Base):
    """A running sender process and when it last said it was alive (its claims' liveness)."""

    __tablename__ = "sender_processes"

    sender_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeadEvent(Base):
    """An event parked in the events dead-letter queue, mirrored here so admins can search it.

    One parked row per body (``body_sha256``): parking the same event again changes nothing.
    A body over the size limit keeps only its head here; the whole body is on the dead queue.
    """

    __tablename__ = "dead_events"
    __table_args__ = (
        Index("uq_dead_events_parked_body", "body_sha256", unique=True, postgresql_where=text("status = 'parked'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event_type: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    parked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), server_default="parked")
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    body_size: Mapped[int | None] = mapped_column(Integer)
    body_truncated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class WebhookPayload(Base):
    """A signed status-webhook body exactly as it arrived, kept for a while so it can be replayed.

    One row per distinct body (``body_sha256``): Meta's retries of the same payload add nothing.
    """

    __tablename__ = "webhook_payloads"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # What applying it did: "received" (not yet applied), "applied", "not_json".
    outcome: Mapped[str] = mapped_column(String(20), server_default="received")
    # Receipts by what they did ({"moved": 1, "duplicate": 2}) the last time it was applied.
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookReceipt(Base):
    """One delivery receipt (a message's status at the provider's time), stored once.

    The unique key is what Meta repeats when it retries or delivers twice, so a duplicate
    receipt is never applied twice.
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (
        UniqueConstraint("provider_message_id", "status", "provider_timestamp", name="uq_webhook_receipts_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider_message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    provider_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    payload_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_payloads.id", ondelete="SET NULL"))
    # What it did to the message: moved, parked, stale, late_failure or unknown (no such message yet).
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)


class ConsoleUser(Base):
    """An account of the admin console (``wanotify users``); the password is an argon2 hash."""

    __tablename__ = "console_users"
    __table_args__ = (UniqueConstraint("username", name="uq_console_users_username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(10))  # viewer, operator, admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One operator action: who, what, on which filter or ids, how many, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(64))  # a console user, or "cli:<os user>"
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the filter or ids acted on
    count: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class TemplateChange(Base):
    """A template's state before and after one edit, for the console's history and diff."""

    __tablename__ = "template_history"
    __table_args__ = (Index("ix_template_history_key", "template_key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    template_key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class MessageActivity(Base):
    """How many messages reached sent, failed or dead in one hour (UTC), for the console's charts.

    Kept by a trigger on ``whatsapp_logs`` (migration 0008), not by the code: every status
    change to one of those counts, whoever makes it.
    """

    __tablename__ = "message_activity"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8), primary_key=True)  # sent, failed, dead
    count: Mapped[int] = mapped_column(BigInteger, server_default="0")


class SenderRow(Base):
    """A WhatsApp number wanotify sends from (contract section 7). Secrets are not stored: the
    settings name the environment variable that holds the token or API key."""

    __tablename__ = "senders"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(10))  # meta, gateway, fake
    # phone_number_id, token_env, api_key_env, sender_number, base_url, api_version, ...
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    gap_min_seconds: Mapped[float | None] = mapped_column(Float)  # NULL: SEND_GAP_SECONDS
    gap_max_seconds: Mapped[float | None] = mapped_column(Float)  # > min: a random gap in [min, max]
    daily_limit: Mapped[int | None] = mapped_column(Integer)  # unique recipients per rolling window
    daily_reserve: Mapped[int] = mapped_column(Integer, server_default="0")  # of it, kept for high priority
    warmup: Mapped[list[int] | None] = mapped_column(JSONB)  # daily limits for day 1, 2, ... of a new number
    warmup_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SenderContact(Base):
    """A recipient counted against a sender's daily limit since ``first_at`` (rolling window)."""

    __tablename__ = "sender_contacts"
    __table_args__ = (Index("ix_sender_contacts_window", "sender", "first_at"),)

    sender: Mapped[str] = mapped_column(String(32), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(20), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Broadcast(Base):
    """One template sent to the rows of a CSV; ``key`` makes a second run of the same file a no-op."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of template, options and file
    name: Mapped[str] = mapped_column(String(200))  # the file's name, for people
    template: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str | None] = mapped_column(String(32))  # pinned, or NULL: each recipient's own
    priority: Mapped[str] = mapped_column(String(10), server_default="low")
    total_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    valid_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """An HTTP API key: only its SHA-256 is stored; the prefix lets people tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StatusOutbox(Base):
    """Status changes of messages waiting to be published to ``{ns}.status`` (contract section 9).

    Written by a trigger on ``whatsapp_logs`` in the transaction that changes the status, so a
    change is never published without being committed, nor committed without a row here."""

    __tablename__ = "status_outbox"
    __table_args__ = (Index("ix_status_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    log_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    template: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
