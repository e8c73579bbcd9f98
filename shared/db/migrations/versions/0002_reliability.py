"""reliability: claim owners and sender liveness, idempotent parked events

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Which sender process claimed a message's current call, and whether that process lives:
    # a redelivered copy is resent only when the claimant is gone.
    op.add_column('whatsapp_logs', sa.Column('claimed_by', sa.String(length=64), nullable=True))
    op.create_table('sender_processes',
    sa.Column('sender_id', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sender_id')
    )
    # Parked events: a hash and size of the whole body, so a redelivered event is parked once
    # and a huge one keeps only a bounded head here (the whole body stays on the dead queue).
    op.add_column('dead_events', sa.Column('body_sha256', sa.String(length=64), nullable=True))
    op.add_column('dead_events', sa.Column('body_size', sa.Integer(), nullable=True))
    op.add_column('dead_events', sa.Column('body_truncated', sa.Boolean(), server_default=sa.text('false'),
                                           nullable=False))
    op.execute("UPDATE dead_events SET body_sha256 = encode(sha256(body), 'hex'), body_size = length(body)")
    # Keep one parked row per body (the oldest) before the unique index goes on.
    op.execute("""
        UPDATE dead_events d SET status = 'purged'
        WHERE status = 'parked' AND EXISTS (
            SELECT 1 FROM dead_events o
            WHERE o.status = 'parked' AND o.body_sha256 = d.body_sha256 AND o.id < d.id)
    """)
    op.create_index('uq_dead_events_parked_body', 'dead_events', ['body_sha256'], unique=True,
                    postgresql_where=sa.text("status = 'parked'"))


def downgrade() -> None:
    op.drop_index('uq_dead_events_parked_body', table_name='dead_events')
    op.drop_column('dead_events', 'body_truncated')
    op.drop_column('dead_events', 'body_size')
    op.drop_column('dead_events', 'body_sha256')
    op.drop_table('sender_processes')
    op.drop_column('whatsapp_logs', 'claimed_by')
