"""what Meta reports, applied once and in order: event keys, report times, lowered limits

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per webhook change already applied (an inbound message by its id, a template or
    # number update by its content and time): Meta's retries and a replay change nothing.
    # payload_id only says where it came from: no foreign key, the payloads are pruned first.
    op.create_table('meta_event_keys',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('field', sa.String(length=60), nullable=False),
    sa.Column('payload_id', sa.BigInteger(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_meta_event_keys_received_at', 'meta_event_keys', ['received_at'], unique=False)
    # When Meta said what is stored: an older update arriving late must not overwrite a newer one.
    op.add_column('meta_templates', sa.Column('status_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('meta_templates', sa.Column('quality_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('phone_number_state', sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('phone_number_state', sa.Column('last_event', sa.String(length=60), nullable=True))
    # True from a DOWNGRADE of the messaging limit until the next raise.
    op.add_column('phone_number_state', sa.Column('limit_lowered', sa.Boolean(), server_default=sa.text('false'),
                                                  nullable=False))


def downgrade() -> None:
    op.drop_column('phone_number_state', 'limit_lowered')
    op.drop_column('phone_number_state', 'last_event')
    op.drop_column('phone_number_state', 'reported_at')
    op.drop_column('meta_templates', 'quality_at')
    op.drop_column('meta_templates', 'status_at')
    op.drop_index('ix_meta_event_keys_received_at', table_name='meta_event_keys')
    op.drop_table('meta_event_keys')
