"""What the notifier writes for the Cloud API: the event's variables, and opt-outs applied at once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text, update

from tests.support.db import messages
from wanotify.consumers.notifier.planning import plan_event
from wanotify.consumers.notifier.store import load_catalog, write_batch
from wanotify.shared import recipients
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Template

PHONE = "+628114040707"


@pytest.fixture
def sessions(sessions):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(text("TRUNCATE recipients"))
    yield sessions
    with transaction(sessions) as session:
        session.execute(update(Template).values(meta_name=None, meta_language=None, meta_category=None,
                                                meta_params=None))


def event(event_type: str, data: dict[str, object]) -> bytes:
    return json.dumps({"event_id": str(uuid.uuid4()), "event_type": event_type,
                       "occurred_at": "2026-11-22T10:00:00Z", "data": data}).encode()


PAYMENT = {"member_id": "M-1", "name": "Budi", "phone": "08114040707", "amount": 150000,
           "payment_url": "https://pay.example.com/i/1"}
BULK = {"phone": "08114040707", "template": "test_message", "priority": "low", "variables": {"sent_at": "x"}}


def write(sessions, bodies: list[bytes], scope: str = "marketing"):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        catalog = load_catalog(session)
        return write_batch(session, [plan_event(body, catalog, "ID") for body in bodies], scope)


def test_the_events_variables_are_kept_with_the_message_without_the_phone(sessions) -> None:
    result = write(sessions, [event("payment.link_created", PAYMENT)])
    [row] = messages(sessions)
    assert row.variables == {"member_id": "M-1", "name": "Budi", "amount": 150000,
                             "payment_url": "https://pay.example.com/i/1", "event_id": str(row.event_id),
                             "occurred_at": "2026-11-22T10:00:00+00:00"}
    assert row.recipient == PHONE and len(result.to_publish) == 1


def test_an_opted_out_recipient_gets_no_bulk_message_but_a_payment_link_under_the_default_scope(sessions) -> None:
    with transaction(sessions) as session:
        recipients.opt_out(session, PHONE, "keyword")
    result = write(sessions, [event("payment.link_created", PAYMENT), event("notification.requested", BULK)])
    rows = {m.template: m for m in messages(sessions)}
    assert (rows["test_message"].status, rows["test_message"].error_code) == ("cancelled", "opted_out")
    assert rows["payment_link"].status == "queued"
    assert [c.template for c in result.to_publish] == ["payment_link"]  # the cancelled one is never queued


def test_a_template_mapped_as_marketing_is_stopped_and_scope_all_stops_everything(sessions) -> None:
    with transaction(sessions) as session:
        recipients.opt_out(session, PHONE, "cli")
        session.execute(update(Template).where(Template.key == "payment_success").values(
            meta_name="promo", meta_language="id", meta_category="marketing", meta_params={}))
    succeeded = {k: v for k, v in PAYMENT.items() if k != "payment_url"}
    marketing = write(sessions, [event("payment.succeeded", succeeded)])
    everything = write(sessions, [event("payment.link_created", PAYMENT)], scope="all")
    assert marketing.to_publish == [] and everything.to_publish == []
    assert [(m.status, m.error_code) for m in messages(sessions)] == [("cancelled", "opted_out")] * 2
    assert "OPT_OUT_SCOPE=all" in messages(sessions)[1].last_error


def test_a_recipient_who_opted_in_again_is_written_as_usual(sessions) -> None:
    with transaction(sessions) as session:
        recipients.opt_out(session, PHONE, "keyword")
        recipients.record_inbound(session, PHONE, datetime.now(UTC))
    with transaction(sessions) as session:
        assert recipients.opt_in(session, PHONE)
    result = write(sessions, [event("notification.requested", BULK)])
    assert [m.status for m in messages(sessions)] == ["queued"] and len(result.to_publish) == 1
