"""A transactional outbox for upstream Python apps (SQLAlchemy): events committed with the
business data, then relayed to wanotify with confirms.

    from wanotify.producers import outbox

    outbox.include_in(Base.metadata)          # the wanotify_outbox table, in the app's own schema

    with Session(engine) as session, session.begin():
        session.add(order)
        outbox.add(session, "payment.link_created", {...}, aggregate_id=order.id)

    outbox.OutboxRelay(engine, "amqp://guest:guest@localhost:5672/").run(stop)   # or: wanotify relay

Needs only SQLAlchemy and pika (and the envelope of ``wanotify.producers``).
"""

from wanotify.producers.outbox.broker import RelayBrokerError
from wanotify.producers.outbox.relay import OutboxBusy, OutboxRelay, RelayStats
from wanotify.producers.outbox.table import TABLE_NAME, add, include_in, outbox

__all__ = ["TABLE_NAME", "OutboxBusy", "OutboxRelay", "RelayBrokerError", "RelayStats", "add", "include_in", "outbox"]
