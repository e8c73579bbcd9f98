"""a message the sender takes back to the queue (deferred, or its number paused) publishes no
second `queued` status event

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# 0009's function, with one rule more where {quiet} stands: `pending` is the sender's internal
# "call in flight" and publishes nothing. When the call does not happen after all (the
# recipient's pacing defers it, or a quality code pauses the number), the row goes back from
# `pending` to `queued`: to upstream apps the message was waiting and still is, so that is no
# change of status. A replay (`dead` to `queued`) still is one.
RECORD_STATUS = """
CREATE OR REPLACE FUNCTION wanotify_record_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'pending' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
    RETURN NULL;
  END IF;{quiet}
  INSERT INTO status_outbox (log_id, event_id, template, sender, status, error, at)
  VALUES (NEW.id, NEW.event_id, NEW.template, NEW.sender, NEW.status,
          CASE WHEN NEW.status IN ('failed', 'dead', 'cancelled') THEN NEW.last_error END,
          clock_timestamp());
  RETURN NULL;
END $$;
"""
QUIET_REQUEUE = """
  IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status = 'queued' THEN
    RETURN NULL;
  END IF;"""


def upgrade() -> None:
    op.execute(RECORD_STATUS.format(quiet=QUIET_REQUEUE))


def downgrade() -> None:
    op.execute(RECORD_STATUS.format(quiet=""))
