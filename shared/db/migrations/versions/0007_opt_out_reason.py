"""recipients: why an operator opted a recipient out

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `wanotify optouts add PHONE --reason ...`: the operator's words, shown in `optouts list`.
    op.add_column('recipients', sa.Column('opt_out_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('recipients', 'opt_out_reason')
