"""``status`` counts the message log in one pass: every status, and the waiting by priority."""

from __future__ import annotations

import uuid

from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MessageLog, Status
from wanotify.shared.monitoring import census, waiting_by_priority


def test_one_pass_counts_every_status_and_the_waiting_by_priority(sessions):  # type: ignore[no-untyped-def]
    # Given messages in several statuses and priorities (failed ones wait for their retry)
    log = [(Status.QUEUED, "high"), (Status.QUEUED, "high"), (Status.QUEUED, "low"), (Status.FAILED, "normal"),
           (Status.SENT, "normal"), (Status.SENT, "high"), (Status.DELIVERED, "low"), (Status.DEAD, "high")]
    with transaction(sessions) as session:
        for status, priority in log:
            session.add(MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                                   recipient="+628111111111", body="hi", priority=priority, status=status, attempts=0))
    with sessions() as session:
        # When they are counted
        counted = census(session)
        # Then each status has its count (those no message is in included, at zero)
        assert counted.statuses == {status.value: 0 for status in Status} | {
            "queued": 3, "failed": 1, "sent": 2, "delivered": 1, "dead": 1}
        # And the waiting ones by priority, as the count of the waiting alone has them
        assert counted.waiting == {"high": 2, "normal": 1, "low": 1} == waiting_by_priority(session)
