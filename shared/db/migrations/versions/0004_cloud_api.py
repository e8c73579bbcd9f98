"""cloud api: approved-template mappings, recipients (window, opt-out), what Meta reports

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # How a local template maps to the approved Meta template sent outside the 24-hour window.
    op.add_column('templates', sa.Column('meta_name', sa.String(length=512), nullable=True))
    op.add_column('templates', sa.Column('meta_language', sa.String(length=15), nullable=True))
    op.add_column('templates', sa.Column('meta_category', sa.String(length=20), nullable=True))
    op.add_column('templates', sa.Column('meta_params', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    # The event's variables, so a template's parameters can be filled at send time (a mapping
    # set after the message was queued still applies) and admins can see what was sent.
    op.add_column('whatsapp_logs', sa.Column('variables', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    # How the message went out: "text" or "template" (NULL before the first call).
    op.add_column('whatsapp_logs', sa.Column('sent_as', sa.String(length=10), nullable=True))
    op.create_table('recipients',
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opt_out_source', sa.String(length=40), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('phone')
    )
    op.create_table('meta_templates',
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('language', sa.String(length=15), nullable=False),
    sa.Column('meta_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('category', sa.String(length=20), nullable=True),
    sa.Column('quality', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('components', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name', 'language')
    )
    op.create_table('account_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('field', sa.String(length=60), nullable=False),
    sa.Column('event', sa.String(length=60), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('phone_number_state',
    sa.Column('phone_number', sa.String(length=40), nullable=False),
    sa.Column('quality', sa.String(length=20), nullable=True),
    sa.Column('messaging_limit', sa.String(length=40), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('phone_number')
    )


def downgrade() -> None:
    op.drop_table('phone_number_state')
    op.drop_table('account_events')
    op.drop_table('meta_templates')
    op.drop_table('recipients')
    op.drop_column('whatsapp_logs', 'sent_as')
    op.drop_column('whatsapp_logs', 'variables')
    for column in ('meta_params', 'meta_category', 'meta_language', 'meta_name'):
        op.drop_column('templates', column)
