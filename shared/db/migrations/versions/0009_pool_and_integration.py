"""sender pool (senders, per-sender state and lease, recipient pacing, daily-limit contacts,
broadcasts) and the integration surface (API keys, the status-event outbox and its trigger)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# Every status change of a message becomes an outbox row in the same transaction (contract
# section 9): published only once committed, and never committed without it. `pending` is the
# sender's internal "call in flight" and is not an event.
RECORD_STATUS = """
CREATE FUNCTION wanotify_record_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'pending' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
    RETURN NULL;
  END IF;
  INSERT INTO status_outbox (log_id, event_id, template, sender, status, error, at)
  VALUES (NEW.id, NEW.event_id, NEW.template, NEW.sender, NEW.status,
          CASE WHEN NEW.status IN ('failed', 'dead', 'cancelled') THEN NEW.last_error END,
          clock_timestamp());
  RETURN NULL;
END $$;
CREATE TRIGGER whatsapp_logs_status_events
AFTER INSERT OR UPDATE OF status ON whatsapp_logs
FOR EACH ROW EXECUTE FUNCTION wanotify_record_status();
"""


def upgrade() -> None:
    op.create_table('senders',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('gap_min_seconds', sa.Float(), nullable=True),
    sa.Column('gap_max_seconds', sa.Float(), nullable=True),
    sa.Column('daily_limit', sa.Integer(), nullable=True),
    sa.Column('daily_reserve', sa.Integer(), server_default='0', nullable=False),
    sa.Column('warmup', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('warmup_started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('sender_contacts',
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=20), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sender', 'recipient')
    )
    op.create_index('ix_sender_contacts_window', 'sender_contacts', ['sender', 'first_at'], unique=False)
    op.create_table('broadcasts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=True),
    sa.Column('priority', sa.String(length=10), server_default='low', nullable=False),
    sa.Column('total_rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('valid_rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash'),
    sa.UniqueConstraint('name')
    )
    op.create_table('status_outbox',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('log_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_status_outbox_unpublished', 'status_outbox', ['id'], unique=False,
                    postgresql_where=sa.text('published_at IS NULL'))

    op.add_column('whatsapp_logs', sa.Column('sender', sa.String(length=32), nullable=True))
    op.add_column('whatsapp_logs', sa.Column('broadcast_id', sa.BigInteger(), nullable=True))
    op.add_column('whatsapp_logs', sa.Column('held_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('whatsapp_logs', sa.Column('held_reason', sa.String(length=20), nullable=True))
    op.create_foreign_key('whatsapp_logs_broadcast_id_fkey', 'whatsapp_logs', 'broadcasts', ['broadcast_id'], ['id'],
                          ondelete='SET NULL')
    op.create_index('ix_whatsapp_logs_broadcast', 'whatsapp_logs', ['broadcast_id', 'status'], unique=False,
                    postgresql_where=sa.text('broadcast_id IS NOT NULL'))
    op.create_index('ix_whatsapp_logs_sender_status', 'whatsapp_logs', ['sender', 'status'], unique=False)

    op.add_column('recipients', sa.Column('sender', sa.String(length=32), nullable=True))
    op.add_column('notification_rules', sa.Column('sender', sa.String(length=32), nullable=True))
    op.add_column('recipients', sa.Column('last_call_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('recipients', sa.Column('pair_backoff_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('recipients', sa.Column('pair_backoff_level', sa.Integer(), server_default='0', nullable=False))

    # One state row per (namespace, sender); the existing row is the `default` sender's.
    op.add_column('sender_state', sa.Column('sender', sa.String(length=32), server_default='default', nullable=False))
    op.add_column('sender_state', sa.Column('lease_holder', sa.String(length=64), nullable=True))
    op.add_column('sender_state', sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint('sender_state_pkey', 'sender_state', type_='primary')
    op.create_primary_key('sender_state_pkey', 'sender_state', ['namespace', 'sender'])

    op.execute(RECORD_STATUS)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS whatsapp_logs_status_events ON whatsapp_logs")
    op.execute("DROP FUNCTION IF EXISTS wanotify_record_status()")
    op.execute("DELETE FROM sender_state WHERE sender <> 'default'")
    op.drop_constraint('sender_state_pkey', 'sender_state', type_='primary')
    op.create_primary_key('sender_state_pkey', 'sender_state', ['namespace'])
    op.drop_column('sender_state', 'lease_expires_at')
    op.drop_column('sender_state', 'lease_holder')
    op.drop_column('sender_state', 'sender')
    op.drop_column('recipients', 'pair_backoff_level')
    op.drop_column('recipients', 'pair_backoff_until')
    op.drop_column('recipients', 'last_call_at')
    op.drop_column('recipients', 'sender')
    op.drop_column('notification_rules', 'sender')
    op.drop_index('ix_whatsapp_logs_sender_status', table_name='whatsapp_logs')
    op.drop_index('ix_whatsapp_logs_broadcast', table_name='whatsapp_logs', postgresql_where=sa.text('broadcast_id IS NOT NULL'))
    op.drop_constraint('whatsapp_logs_broadcast_id_fkey', 'whatsapp_logs', type_='foreignkey')
    op.drop_column('whatsapp_logs', 'held_reason')
    op.drop_column('whatsapp_logs', 'held_until')
    op.drop_column('whatsapp_logs', 'broadcast_id')
    op.drop_column('whatsapp_logs', 'sender')
    op.drop_index('ix_status_outbox_unpublished', table_name='status_outbox', postgresql_where=sa.text('published_at IS NULL'))
    op.drop_table('status_outbox')
    op.drop_table('api_keys')
    op.drop_table('broadcasts')
    op.drop_index('ix_sender_contacts_window', table_name='sender_contacts')
    op.drop_table('sender_contacts')
    op.drop_table('senders')
