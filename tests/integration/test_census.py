"""``status`` and the metrics count the message log in two passes that never read each other's
rows: the waiting messages by status, priority and sender, and the settled ones by status; in
one statement, so one snapshot."""

from __future__ import annotations

import uuid

from sqlalchemy import event, text

from tests.support.db import plans_of
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog, Status
from wanotify.shared.monitoring import census, next_queued, tally_waiting


def _log(sessions, rows) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        for status, priority, sender in rows:
            session.add(MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                                   recipient="+628111111111", body="hi", priority=priority, status=status, attempts=0,
                                   sender=sender))


def test_every_status_and_the_waiting_by_priority_and_sender_are_counted(sessions):  # type: ignore[no-untyped-def]
    # Given messages in several statuses, priorities and senders (failed ones wait for their retry;
    # a message logged before senders existed has none, and is the default sender's)
    _log(sessions, [(Status.QUEUED, "high", None), (Status.QUEUED, "high", "default"), (Status.QUEUED, "low", "b"),
                    (Status.FAILED, "normal", "b"), (Status.SENT, "normal", "b"), (Status.SENT, "high", None),
                    (Status.DELIVERED, "low", "default"), (Status.DEAD, "high", "b"), (Status.PENDING, "low", "b")])
    with sessions() as session:
        # When they are counted
        counted = census(session)
    # Then each status has its count (those no message is in included, at zero)
    assert counted.statuses == {status.value: 0 for status in Status} | {
        "queued": 3, "failed": 1, "sent": 2, "delivered": 1, "dead": 1, "pending": 1}
    # And the waiting ones by priority (every priority named) and by sender
    assert counted.waiting.by_priority == {"high": 2, "normal": 1, "low": 1}
    assert counted.waiting.by_sender == {"default": 2, "b": 2}
    assert counted.waiting.total == 4


def test_a_message_that_moves_on_while_it_is_counted_is_counted_once(sessions, engine):  # type: ignore[no-untyped-def]
    # Given messages waiting, and one of them sent by another session just after the count's first statement
    _log(sessions, [(Status.QUEUED, "normal", "default")] * 3 + [(Status.SENT, "normal", "default")])
    with sessions() as session:
        connection = session.connection()
        moved: list[bool] = []

        def send_one(*_args: object) -> None:
            if not moved:
                moved.append(True)
                with engine.begin() as other:
                    other.execute(text("UPDATE whatsapp_logs SET status = 'sent' "
                                       "WHERE id = (SELECT min(id) FROM whatsapp_logs WHERE status = 'queued')"))

        event.listen(connection, "after_cursor_execute", send_one)
        try:
            # When the log is counted
            counted = census(session)
        finally:
            event.remove(connection, "after_cursor_execute", send_one)
    # Then it was moved meanwhile, and every message is counted once, as before or after the move
    assert moved
    assert sum(counted.statuses.values()) == 4
    assert (counted.statuses["queued"], counted.statuses["sent"]) in {(3, 1), (2, 2)}


def test_each_pass_reads_only_its_own_messages_through_an_index(sessions, engine):  # type: ignore[no-untyped-def]
    # Given a large waiting backlog, of several senders, beside a few settled messages
    with transaction(sessions) as session:
        session.execute(text("""
            INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, sender, status, attempts)
            SELECT gen_random_uuid(), 'member.registered', 'welcome_new_member', '+62812' || lpad(i::text, 8, '0'),
                   'hi', (ARRAY['high', 'normal', 'low'])[1 + i % 3], 's' || (i % 4), 'queued', 0
            FROM generate_series(1, 20000) AS i"""))
    _log(sessions, [(Status.SENT, "normal", "s1"), (Status.DEAD, "low", "s2")])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE whatsapp_logs"))  # as autovacuum leaves a backlog that waits
    with sessions() as session:
        # When both passes run (one statement, a branch each)
        [plan] = plans_of(session, lambda: census(session))
        counted = tally_waiting(session)
    # Then the waiting are counted from their own index alone, without visiting the table
    waiting_plan, settled_plan = plan.split("\n  ->  ")[1:]
    assert "Index Only Scan using ix_whatsapp_logs_waiting" in waiting_plan
    assert "Seq Scan" not in waiting_plan
    # And the settled ones through an index range per status, which holds no waiting message
    assert "Index Cond: (status = ANY" in settled_plan and "Seq Scan" not in settled_plan
    assert counted.total == 20000 and counted.by_sender == {f"s{i}": 5000 for i in range(4)}



def test_the_next_messages_are_read_in_order_from_the_index_when_many_were_queued_together(sessions, engine):  # type: ignore[no-untyped-def]
    # Given a large backlog queued in one transaction (so with one queued_at), behind two highs
    with transaction(sessions) as session:
        session.execute(text("""
            INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status, attempts)
            SELECT gen_random_uuid(), 'member.registered', 'welcome_new_member', '+62812' || lpad(i::text, 8, '0'),
                   'hi', CASE WHEN i > 19998 THEN 'high' ELSE 'normal' END, 'queued', 0
            FROM generate_series(1, 20000) AS i"""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE whatsapp_logs"))
    with sessions() as session:
        # When status lists the next five to go out
        plans = plans_of(session, lambda: next_queued(session, 5))
        rows = next_queued(session, 5)
    # Then they are the highs, then the first normal ones, first in first out
    assert [r.priority for r in rows] == ["high"] * 2 + ["normal"] * 3
    normal = [r.id for r in rows[2:]]
    assert normal == sorted(normal) and rows[0].id < rows[1].id
    # And each priority's are the first entries of an index range, with no sort of the many
    for plan in plans:
        assert "ix_whatsapp_logs_status_priority" in plan and "Sort" not in plan, plan
