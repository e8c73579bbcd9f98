"""Reading the message log in tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.db.models import Attempt, DeadEvent, MessageLog, SenderState


def messages(sessions: sessionmaker[Session]) -> list[MessageLog]:
    with sessions() as session:
        return list(session.scalars(select(MessageLog).order_by(MessageLog.id)))


def attempts(sessions: sessionmaker[Session], log_id: int) -> list[Attempt]:
    with sessions() as session:
        return list(session.scalars(select(Attempt).where(Attempt.log_id == log_id).order_by(Attempt.id)))


def dead_events(sessions: sessionmaker[Session]) -> list[DeadEvent]:
    with sessions() as session:
        return list(session.scalars(select(DeadEvent).order_by(DeadEvent.id)))


def sender_state(sessions: sessionmaker[Session], namespace: str, sender: str = "default") -> SenderState | None:
    with sessions() as session:
        return session.get(SenderState, (namespace, sender))


def statuses(sessions: sessionmaker[Session]) -> list[Any]:
    return [m.status for m in messages(sessions)]


def plans_of(session: Session, work: Callable[[], object]) -> list[str]:
    """The plans PostgreSQL chooses for the statements ``work`` runs on ``session``, in order."""
    statements: list[tuple[str, Any]] = []
    connection = session.connection()

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", keep)
    try:
        work()
    finally:
        event.remove(connection, "before_cursor_execute", keep)
    return ["\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
            for statement, parameters in statements]
