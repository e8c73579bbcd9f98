"""webhook receipts and raw payloads: receipts applied once, payloads kept for replay

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every signed status-webhook body as it arrived (one row per distinct body), pruned after
    # WEBHOOK_RETENTION_DAYS, so an operator can replay what Meta sent.
    op.create_table('webhook_payloads',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=20), server_default='received', nullable=False),
    sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('body_sha256')
    )
    op.create_index('ix_webhook_payloads_received_at', 'webhook_payloads', ['received_at'])
    # One row per receipt; the unique key is what Meta repeats on a retry or a double delivery
    # (for up to 7 days), so inserting with ON CONFLICT DO NOTHING makes applying idempotent.
    op.create_table('webhook_receipts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('provider_message_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider_timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('payload_id', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['payload_id'], ['webhook_payloads.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_message_id', 'status', 'provider_timestamp', name='uq_webhook_receipts_key')
    )


def downgrade() -> None:
    op.drop_table('webhook_receipts')
    op.drop_index('ix_webhook_payloads_received_at', table_name='webhook_payloads')
    op.drop_table('webhook_payloads')
