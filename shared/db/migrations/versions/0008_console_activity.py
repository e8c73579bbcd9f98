"""console: hourly activity counts kept by a trigger, indexes for message search

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Counts a message's arrival at sent (delivered/read straight from an unsent state count as
# sent too), failed or dead, in the hour it happened: the console's charts and "today" figures
# read a few hundred of these rows instead of scanning the message log. It runs only when a
# status changes to one of those, never for the notifier's inserts of queued messages.
COUNT_ACTIVITY = """
CREATE FUNCTION wanotify_count_activity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text;
  at timestamptz;
BEGIN
  IF NEW.status IN ('sent', 'delivered', 'read') THEN
    IF TG_OP = 'UPDATE' AND OLD.status IN ('sent', 'delivered', 'read') THEN
      RETURN NULL;  -- a receipt moving a sent message forward: already counted
    END IF;
    kind := 'sent';
    at := coalesce(NEW.sent_at, now());
  ELSIF NEW.status IN ('failed', 'dead') THEN
    kind := NEW.status;
    at := CASE WHEN TG_OP = 'INSERT' THEN coalesce(NEW.updated_at, now()) ELSE now() END;
  ELSE
    RETURN NULL;
  END IF;
  INSERT INTO message_activity (hour, outcome, count) VALUES (date_trunc('hour', at, 'UTC'), kind, 1)
  ON CONFLICT (hour, outcome) DO UPDATE SET count = message_activity.count + 1;
  RETURN NULL;
END $$
"""

BACKFILL = """
INSERT INTO message_activity (hour, outcome, count)
SELECT date_trunc('hour', at, 'UTC'), outcome, count(*) FROM (
  SELECT coalesce(sent_at, updated_at) AS at, 'sent' AS outcome FROM whatsapp_logs
   WHERE status IN ('sent', 'delivered', 'read')
  UNION ALL
  SELECT updated_at, status FROM whatsapp_logs WHERE status IN ('failed', 'dead')
) AS happened GROUP BY 1, 2
"""


def upgrade() -> None:
    op.create_table('message_activity',
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('count', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('hour', 'outcome')
    )
    op.execute(COUNT_ACTIVITY)
    op.execute("CREATE TRIGGER whatsapp_logs_activity_insert AFTER INSERT ON whatsapp_logs FOR EACH ROW "
               "WHEN (NEW.status IN ('sent', 'delivered', 'read', 'failed', 'dead')) "
               "EXECUTE FUNCTION wanotify_count_activity()")
    op.execute("CREATE TRIGGER whatsapp_logs_activity_update AFTER UPDATE OF status ON whatsapp_logs FOR EACH ROW "
               "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION wanotify_count_activity()")
    op.execute(BACKFILL)  # history as well as it is known: the current status, at its time
    # The console's message search: by recipient, template or status, newest first (keyset on id).
    op.create_index('ix_whatsapp_logs_recipient_id', 'whatsapp_logs', ['recipient', 'id'], unique=False)
    op.create_index('ix_whatsapp_logs_template_id', 'whatsapp_logs', ['template', 'id'], unique=False)
    op.create_index('ix_whatsapp_logs_status_id', 'whatsapp_logs', ['status', 'id'], unique=False)
    # The overview counts waiting messages by priority on every refresh: a partial index holds
    # only them, so the count reads no entry of the millions already sent.
    op.create_index('ix_whatsapp_logs_waiting', 'whatsapp_logs', ['priority'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'failed')"))


def downgrade() -> None:
    op.execute('DROP INDEX IF EXISTS ix_whatsapp_logs_waiting')  # added to 0008 after its first commit
    op.drop_index('ix_whatsapp_logs_status_id', table_name='whatsapp_logs')
    op.drop_index('ix_whatsapp_logs_template_id', table_name='whatsapp_logs')
    op.drop_index('ix_whatsapp_logs_recipient_id', table_name='whatsapp_logs')
    op.execute("DROP TRIGGER whatsapp_logs_activity_update ON whatsapp_logs")
    op.execute("DROP TRIGGER whatsapp_logs_activity_insert ON whatsapp_logs")
    op.execute("DROP FUNCTION wanotify_count_activity()")
    op.drop_table('message_activity')
