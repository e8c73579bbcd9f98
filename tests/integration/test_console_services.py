"""The services behind the console's pages (and the CLI): activity counts, the overview, message
search and detail, accounts — against the real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from wanotify.ops.admin import activity, messages, overview
from wanotify.ops.admin.status import collect as collect_status
from wanotify.ops.admin.users import Role, UserError, add_user, authenticate, remove_user, set_password
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Attempt, ConsoleUser, MessageActivity, MessageLog, SenderProcess, SenderRow, SenderState
from wanotify.shared.monitoring import QueueProbe, QueueStats


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE message_activity"))
    return sessions


def add(sessions: sessionmaker[Session], status: str = "queued", priority: str = "normal",
        recipient: str = "+628114040707", **fields: object) -> int:
    with transaction(sessions) as session:
        m = MessageLog(event_id=uuid.uuid4(), event_type="member.registered", template="welcome_new_member",
                       recipient=recipient, body=f"Halo, nomor anda {recipient}", priority=priority, status=status,
                       **fields)
        session.add(m)
        session.flush()
        return m.id


def set_status(sessions: sessionmaker[Session], message_id: int, status: str) -> None:
    with transaction(sessions) as session:
        session.execute(update(MessageLog).where(MessageLog.id == message_id).values(status=status))


def activity_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(select(MessageActivity.outcome, func.sum(MessageActivity.count))
                               .group_by(MessageActivity.outcome))
        return {o: int(n) for o, n in rows}


def test_each_arrival_at_sent_failed_or_dead_is_counted_once_in_its_hour(db: sessionmaker[Session]) -> None:
    message = add(db)
    for status in ("pending", "failed", "queued", "pending", "sent", "delivered", "read"):
        set_status(db, message, status)
    assert activity_counts(db) == {"failed": 1, "sent": 1}  # a receipt moving it forward is not a second send
    other = add(db)
    set_status(db, other, "dead")
    set_status(db, other, "delivered")  # a late receipt on a message parked by a failed one: it did arrive
    assert activity_counts(db) == {"failed": 1, "sent": 2, "dead": 1}
    with db() as session:
        now = activity.now_utc(session)
        assert activity.today(session, now) == {"sent": 2, "failed": 1, "dead": 1}
        hourly = activity.hourly(session, now)
        assert len(hourly["at"]) == 24 and hourly["sent"][-1] == 2 and sum(hourly["sent"]) == 2
        daily = activity.daily(session, now)
        assert len(daily["at"]) == 30 and daily["dead"][-1] == 1


def test_the_overview_lists_the_next_messages_by_priority_a_gap_apart(db: sessionmaker[Session]) -> None:
    settings = Settings.from_env({}).with_(namespace="wt-overview", send_gap_seconds=10)
    low = add(db, priority="low")
    normal = [add(db) for _ in range(2)]
    high = add(db, priority="high")
    add(db, status="failed")
    add(db, status="dead")
    with transaction(db) as session:
        figures = overview.overview(session, settings)
    assert [m["id"] for m in figures["next"]] == [high, *normal, low]
    etas = [m["eta"] for m in figures["next"]]
    assert [(b - a).total_seconds() for a, b in pairwise(etas)] == [10.0, 10.0, 10.0]
    assert figures["next"][0]["recipient"] == "6281******07"
    assert figures["backlog"]["waiting"] == 5 and figures["backlog"]["by_priority"] == {"high": 1, "normal": 3, "low": 1}
    assert figures["backlog"]["drain_seconds"] == 40
    assert figures["counts"] == {"failed": 1, "dead": 1}
    assert figures["sender"]["state"] == "stopped"  # messages wait, no sender process is alive


def test_the_overview_tells_sending_idle_and_paused_apart(db: sessionmaker[Session]) -> None:
    settings = Settings.from_env({}).with_(namespace="wt-overview-state", send_gap_seconds=10)
    with transaction(db) as session:
        assert overview.overview(session, settings)["sender"]["state"] == "idle"
        session.add(SenderProcess(sender_id="s-alive", host="elsewhere", pid=1))
    add(db)
    with transaction(db) as session:
        figures = overview.overview(session, settings)
        assert figures["sender"]["state"] == "sending" and figures["sender"]["alive"] == 1
        now = activity.now_utc(session)
        session.add(SenderState(namespace=settings.namespace, last_call_at=now - timedelta(seconds=4),
                                paused_until=now + timedelta(minutes=30), pause_reason="meta 131048 quality limit"))
    with transaction(db) as session:
        sender = overview.overview(session, settings)["sender"]
        session.execute(delete(SenderProcess).where(SenderProcess.sender_id == "s-alive"))
    assert sender["state"] == "paused" and sender["pause_reason"] == "meta 131048 quality limit"
    assert sender["next_slot_at"] == sender["paused_until"]  # not the end of the gap: the pause lasts longer


def test_the_gap_distribution_counts_paced_idle_and_early_gaps(db: sessionmaker[Session]) -> None:
    message = add(db, status="sent")
    with transaction(db) as session:
        start = activity.now_utc(session) - timedelta(hours=1)
        offsets = [0, 10.002, 20.004, 30.01, 300, 309.5]  # a pause of ~270 s, then one call 0.5 s early
        session.add_all(Attempt(log_id=message, attempt=i + 1, started_at=start + timedelta(seconds=s))
                        for i, s in enumerate(offsets))
    with db() as session:
        gaps = activity.gaps(session, {}, 10.0)
    assert gaps["calls"] == 6 and gaps["idle"] == 1 and gaps["early"] == 1
    assert sum(gaps["counts"]) == 4 and gaps["min"] == pytest.approx(9.5) and gaps["median"] == pytest.approx(10.002)


class NoQueues(QueueProbe):
    """A broker where no queue exists yet: the overview and ``status`` compared on the database's figures."""

    def __init__(self) -> None:
        pass

    def stats(self, names: list[str]) -> list[QueueStats]:
        return [QueueStats(name, None, None) for name in names]


@pytest.fixture
def two_senders(db: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """Senders a (gap 10 s) and b (gap 30 s); the waiting messages of earlier tests cancelled."""
    with transaction(db) as session:
        session.execute(update(MessageLog).where(MessageLog.status.in_(("queued", "failed"))).values(status="cancelled"))
        session.add_all([SenderRow(name="a", provider="fake", settings={}, gap_min_seconds=10),
                         SenderRow(name="b", provider="fake", settings={}, gap_min_seconds=30)])
    yield db
    with transaction(db) as session:
        session.execute(text("TRUNCATE senders"))


def test_the_overview_of_a_pool_shows_each_sender_and_times_each_message_by_its_own(
        two_senders: sessionmaker[Session]) -> None:
    settings = Settings.from_env({}).with_(namespace="wt-overview-pool", send_gap_seconds=10)
    on_a = [add(two_senders, sender="a", recipient=f"+62811404070{i}") for i in range(3)]
    on_b = [add(two_senders, priority="high", sender="b", recipient=f"+62811404071{i}") for i in range(2)]
    with transaction(two_senders) as session:
        now = activity.now_utc(session)
        session.add(SenderState(namespace=settings.namespace, sender="b", last_call_at=now - timedelta(seconds=5),
                                paused_until=now + timedelta(hours=2), pause_reason="paused by hand by cli:ana: review"))
        session.add(SenderProcess(sender_id="s-pool", host="elsewhere", pid=1))
    try:
        with transaction(two_senders) as session:
            figures = overview.overview(session, settings)
            with_status = collect_status(settings, session, NoQueues())
    finally:
        with transaction(two_senders) as session:
            session.execute(delete(SenderProcess).where(SenderProcess.sender_id == "s-pool"))
    pool, senders = figures["sender"], {s["name"]: s for s in figures["senders"]}
    # One sender paused (for two hours, by hand) does not make the pool paused: a still sends.
    assert pool["state"] == "sending" and pool["by_state"] == {"active": 1, "paused": 1}
    assert senders["b"]["state"] == "paused" and not senders["b"]["until_resumed"]
    assert senders["b"]["next_slot_at"] == senders["b"]["paused_until"]
    assert (senders["a"]["waiting"], senders["b"]["waiting"]) == (3, 2)
    # b's high messages go when its pause ends, 30 s apart; a's at once, 10 s apart.
    etas = {m["id"]: m["eta"] for m in figures["next"]}
    assert [m["id"] for m in figures["next"]] == [*on_b, *on_a]
    assert (etas[on_b[1]] - etas[on_b[0]]).total_seconds() == 30 and etas[on_b[0]] == senders["b"]["paused_until"]
    assert etas[on_a[0]] == figures["now"] and [(etas[b] - etas[a]).total_seconds() for a, b in pairwise(on_a)] == [10, 10]
    # The backlog is done when b, the slowest, has sent its own: its pause, then one gap (a needs 20 s).
    assert figures["backlog"]["drain_seconds"] == with_status["backlog"]["drain_seconds"]
    assert figures["backlog"]["drain_seconds"] == pytest.approx(2 * 3600 + 30, abs=1)


def test_the_overview_is_paused_when_every_sender_that_may_send_is(two_senders: sessionmaker[Session]) -> None:
    settings = Settings.from_env({}).with_(namespace="wt-overview-pool-paused", send_gap_seconds=10)
    add(two_senders, sender="a")
    with transaction(two_senders) as session:
        session.execute(update(SenderRow).where(SenderRow.name == "b").values(disabled_at=func.now()))
        session.add(SenderState(namespace=settings.namespace, sender="a", paused_until=func.now() + timedelta(days=36500),
                                pause_reason="paused by hand by cli:ana"))
    with transaction(two_senders) as session:
        figures = overview.overview(session, settings)
    senders = {s["name"]: s for s in figures["senders"]}
    assert figures["sender"]["state"] == "paused"
    assert senders["a"]["until_resumed"] and senders["a"]["next_slot_at"] is None and figures["next"][0]["eta"] is None
    assert senders["b"]["state"] == "disabled" and senders["b"]["next_slot_at"] is None
    assert figures["backlog"]["drain_seconds"] is None  # no sender may send


def test_the_gaps_of_a_pool_are_measured_per_number(two_senders: sessionmaker[Session]) -> None:
    """Two numbers calling 0.1 s apart, each keeping its own gap: nothing is early."""
    message_a, message_b = add(two_senders, status="sent", sender="a"), add(two_senders, status="sent", sender="b")
    with transaction(two_senders) as session:
        start = activity.now_utc(session) - timedelta(hours=1)
        calls = [(message_a, 0), (message_b, 0.1), (message_a, 10.001), (message_b, 30.2), (message_a, 20.5),
                 (message_a, 29.9)]  # a's last call is 9.4 s after its previous one: early
        session.add_all(Attempt(log_id=log_id, attempt=i + 1, started_at=start + timedelta(seconds=s))
                        for i, (log_id, s) in enumerate(calls))
    with two_senders() as session:
        gaps = activity.gaps(session, {"a": 10.0, "b": 30.0}, 10.0, sample=len(calls))
    assert gaps["senders"] == 2 and gaps["calls"] == 6 and gaps["early"] == 1 and gaps["setting"] == 10.0
    assert gaps["min"] == pytest.approx(9.4) and sum(gaps["counts"]) == 4


@pytest.mark.parametrize("typed", ["08114040707", "628114040707", "+62 811-4040-707", "0062 811 4040 707"])
def test_a_phone_in_any_accepted_form_finds_the_message(db: sessionmaker[Session], typed: str) -> None:
    wanted = add(db)
    add(db, recipient="+628114040708")
    query = messages.parse_query({"phone": typed}, "ID")
    with db() as session:
        found = messages.search(session, query)
    assert [row["id"] for row in found["rows"]] == [wanted]
    assert found["rows"][0]["recipient"] == "6281******07"


def test_search_pages_newest_first_with_a_keyset(db: sessionmaker[Session]) -> None:
    ids = [add(db, status="sent") for _ in range(5)]
    add(db, status="queued")
    query = messages.parse_query({"status": "sent"}, "ID")
    with db() as session:
        first = messages.search(session, query, limit=2)
        second = messages.search(session, query, after=first["next_after"], limit=2)
        last = messages.search(session, query, after=second["next_after"], limit=2)
    assert [r["id"] for r in first["rows"] + second["rows"] + last["rows"]] == ids[::-1]
    assert last["next_after"] is None


def test_search_by_event_id_template_dates_and_refusals(db: sessionmaker[Session]) -> None:
    wanted = add(db)
    with db() as session:
        event_id = session.get(MessageLog, wanted).event_id  # type: ignore[union-attr]
        created = session.get(MessageLog, wanted).created_at.date()  # type: ignore[union-attr]
        by_event = messages.search(session, messages.parse_query({"event_id": str(event_id)}, "ID"))
        by_day = messages.search(session, messages.parse_query({"from": str(created), "to": str(created),
                                                                "template": "welcome_new_member"}, "ID"))
        before = messages.search(session, messages.parse_query({"to": str(created - timedelta(days=1))}, "ID"))
    assert [r["id"] for r in by_event["rows"]] == [wanted] == [r["id"] for r in by_day["rows"]]
    assert before["rows"] == []
    bad = messages.parse_query({"phone": "12", "event_id": "nope", "status": "lost", "from": "yesterday"}, "ID")
    assert len(bad.problems) == 4 and "12" not in bad.problems[0].replace("region", "")


def test_a_message_detail_has_attempts_and_masked_text_and_variables(db: sessionmaker[Session]) -> None:
    message = add(db, status="sent", variables={"name": "Budi", "phone": "08114040707", "note": "call +62 811 4040 707"})
    old = add(db, status="sent")
    with transaction(db) as session:
        start = activity.now_utc(session)
        session.add(Attempt(log_id=message, attempt=1, started_at=start, finished_at=start + timedelta(milliseconds=250),
                            outcome="failed", error="timeout calling +628114040707", error_code="timeout"))
    with db() as session:
        shown = messages.detail(session, message)
        assert messages.detail(session, old)["variables"] is None  # type: ignore[index]
        assert messages.detail(session, 10**9) is None
    assert shown is not None
    assert shown["attempts_list"][0]["ms"] == 250 and "8114040707" not in shown["attempts_list"][0]["error"]
    assert "8114040707" not in str(shown)


def test_accounts_log_in_only_with_their_password_and_not_after_removal(db: sessionmaker[Session]) -> None:
    with transaction(db) as session:
        session.execute(delete(ConsoleUser).where(ConsoleUser.username == "alice"))
        user = add_user(session, "alice", Role.OPERATOR, "a good long password")
        assert user.password_hash.startswith("$argon2id$")
        with pytest.raises(UserError, match="exists already"):
            add_user(session, "alice", Role.ADMIN, "another long password")
        with pytest.raises(UserError, match="too short"):
            set_password(session, "alice", "short")
    with transaction(db) as session:
        assert authenticate(session, "alice", "a good long password") is not None
        assert authenticate(session, "alice", "wrong password!") is None
        assert authenticate(session, "nobody", "a good long password") is None
        set_password(session, "alice", "the next long password")
    with transaction(db) as session:
        assert authenticate(session, "alice", "a good long password") is None
        assert authenticate(session, "alice", "the next long password") is not None
        remove_user(session, "alice")
    with transaction(db) as session:
        assert authenticate(session, "alice", "the next long password") is None
