"""Demo data for the console: a month of history, a backlog, failures, receipts, an audit trail.

Written straight into the tables (the pipeline would take a month to make it): the sent,
failed and dead rows reach ``message_activity`` through its trigger like any others.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from wanotify.ops.admin import audit
from wanotify.shared.db.models import Attempt, MessageLog, SenderProcess, SenderState, WebhookReceipt

TEMPLATES = [("member.registered", "welcome_new_member", "normal"), ("payment.link_created", "payment_link", "high"),
             ("payment.succeeded", "payment_success", "high"), ("commission.received", "commission_received", "normal"),
             ("withdrawal.approved", "withdrawal_approved", "high")]
NAMES = ["Budi", "Siti", "Agus", "Dewi", "Rina", "Joko", "Wati", "Andi", "Putri", "Hadi", "Sri", "Yusuf"]

# A month of sent messages, a few failed and dead ones, busier in the day than at night (UTC+7).
HISTORY = """
INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status, attempts,
                           sent_at, created_at, queued_at, updated_at, last_error, error_code, variables)
SELECT gen_random_uuid(), (ARRAY['member.registered','payment.link_created','payment.succeeded',
         'commission.received'])[1 + i % 4], (ARRAY['welcome_new_member','payment_link','payment_success',
         'commission_received'])[1 + i % 4],
       '+62811' || lpad((4000000 + i % 5000)::text, 7, '0'), 'Halo, pesan demo nomor ' || i,
       (ARRAY['normal','high','high','normal'])[1 + i % 4],
       CASE WHEN i % 97 = 0 THEN 'dead' WHEN i % 3 = 0 THEN 'read'
            WHEN i % 3 = 1 THEN 'delivered' ELSE 'sent' END,
       CASE WHEN i % 97 = 0 THEN 4 ELSE 1 END,
       at, at - interval '3 seconds', at - interval '3 seconds', at,
       CASE WHEN i % 97 = 0 THEN 'Recipient phone number not in allowed list' END,
       CASE WHEN i % 97 = 0 THEN 'meta_131030' END,
       NULL
FROM (SELECT i, now() - interval '30 days' + (i * interval '30 days' / :n)
           + (sin(i) * interval '20 minutes') AS at
      FROM generate_series(1, :n) AS i) AS s
WHERE extract(hour FROM at AT TIME ZONE 'Asia/Jakarta') BETWEEN 7 AND 22 OR i % 4 = 0
"""


def seed(session: Session, namespace: str, *, history: int = 12_000, gap: float = 10.0) -> dict[str, int]:
    """Adds the demo rows; returns a few of their ids for pages that show one message."""
    session.execute(text(HISTORY), {"n": history})
    recent = _recent_calls(session, gap)
    waiting = _backlog(session)
    last_call = session.execute(text("SELECT max(started_at) FROM whatsapp_attempts")).scalar_one()
    session.merge(SenderState(namespace=namespace, sender_id="demo-sender", last_call_at=last_call))
    session.merge(SenderProcess(sender_id="demo-sender", host="demo", pid=1, seen_at=_now(session), stopped_at=None))
    _audit_trail(session)
    return {"message": recent, "waiting": waiting}


def _now(session: Session):  # type: ignore[no-untyped-def]
    return session.execute(text("SELECT now()")).scalar_one()


def _recent_calls(session: Session, gap: float, calls: int = 300) -> int:
    """The last calls, each at least a gap after the one before (plus a few ms, as a real sender
    keeps it), with attempts and receipts: one in 25 parked dead, one in 50 retried 30 calls later.
    Returns the id of the last message retried (its page shows both attempts)."""
    started = _now(session) - timedelta(seconds=calls * gap + 4)
    retries: dict[int, MessageLog] = {}
    retried = 0
    for n in range(calls):
        started += timedelta(seconds=gap, milliseconds=1 + (n * 7) % 9)
        message = retries.pop(n, None)
        if message is not None:
            retried = _sent(session, message, started, attempt=2)
        elif n % 50 == 10 and n + 30 < calls:
            retries[n + 30] = _failed(session, n, started)
        elif n % 25 == 0:
            _dead(session, n, started)
        else:
            _sent(session, _new(session, n, started), started, attempt=1)
    return retried


def _new(session: Session, n: int, started) -> MessageLog:  # type: ignore[no-untyped-def]
    event, template, priority = TEMPLATES[n % len(TEMPLATES)]
    name = NAMES[n % len(NAMES)]
    message = MessageLog(event_id=uuid.uuid4(), event_type=event, template=template, priority=priority,
                         recipient=f"+628114040{n % 1000:03d}", status="pending",
                         body=f"Halo {name}, terima kasih telah mendaftar. Link pembayaran: https://pay.example/{n}",
                         created_at=started - timedelta(seconds=30), queued_at=started - timedelta(seconds=30),
                         variables={"member_id": f"M-{1000 + n}", "name": name, "phone": f"0811404{n % 1000:04d}",
                                    "amount": 150000 + n * 1000})
    session.add(message)
    session.flush()
    return message


def _sent(session: Session, message: MessageLog, started, attempt: int) -> int:  # type: ignore[no-untyped-def]
    session.add(Attempt(log_id=message.id, attempt=attempt, started_at=started,
                        finished_at=started + timedelta(milliseconds=160 + attempt * 40), outcome="sent"))
    message.attempts, message.sent_at, message.last_error = attempt, started, None
    message.provider_message_id = f"wamid.demo{message.id}"
    message.status = "read" if message.id % 2 else "delivered"
    session.flush()
    for status, after in [("sent", 1), ("delivered", 3)] + ([("read", 40)] if message.status == "read" else []):
        session.add(WebhookReceipt(provider_message_id=message.provider_message_id, status=status,
                                   provider_timestamp=started + timedelta(seconds=after),
                                   received_at=started + timedelta(seconds=after + 1), outcome="moved"))
    return message.id


def _failed(session: Session, n: int, started) -> MessageLog:  # type: ignore[no-untyped-def]
    message = _new(session, n, started)
    session.add(Attempt(log_id=message.id, attempt=1, started_at=started, finished_at=started + timedelta(seconds=15),
                        outcome="failed", error="provider timeout after 15 s", error_code="timeout"))
    message.attempts, message.status, message.last_error, message.error_code = 1, "failed", "timeout", "timeout"
    session.flush()
    return message


def _dead(session: Session, n: int, started) -> None:  # type: ignore[no-untyped-def]
    message = _new(session, n, started)
    error = "(#131026) Message undeliverable: the number is not on WhatsApp"
    session.add(Attempt(log_id=message.id, attempt=1, started_at=started, finished_at=started + timedelta(milliseconds=210),
                        outcome="dead", error=error, error_code="meta_131026"))
    message.attempts, message.status, message.last_error, message.error_code = 1, "dead", error, "meta_131026"
    session.flush()


def _backlog(session: Session) -> int:
    """Messages waiting: three urgent payment links ahead of welcomes and a low-priority broadcast."""
    rows = [("payment.link_created", "payment_link", "high")] * 3 + [("member.registered", "welcome_new_member", "normal")] * 9
    rows += [("notification.requested", "promo_broadcast", "low")] * 6
    for n, (event, template, priority) in enumerate(rows):
        session.add(MessageLog(event_id=uuid.uuid4(), event_type=event, template=template, priority=priority,
                               recipient=f"+628125550{n:03d}", status="queued", body=f"Halo {NAMES[n % len(NAMES)]}",
                               variables={"name": NAMES[n % len(NAMES)], "phone": f"0812555{n:04d}"}))
    return len(rows)


def _audit_trail(session: Session) -> None:
    audit.record(session, "cli:root", "user.add", target={"user": "admin", "role": "admin"}, count=1)
    audit.record(session, "admin", "user.add", target={"user": "rina", "role": "operator"}, count=1)
    audit.record(session, "rina", "dead.replay", target={"reason": "meta_131030"}, count=3)
    audit.record(session, "rina", "sender.pause", target={"sender": "default"}, detail="campaign review")
    audit.record(session, "rina", "sender.resume", target={"sender": "default"})


def heartbeat(session: Session) -> None:
    """The demo sender process says it is alive (the overview shows "sending" while it does)."""
    session.execute(text("UPDATE sender_processes SET seen_at = now() WHERE sender_id = 'demo-sender'"))
