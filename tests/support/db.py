"""Reading the message log in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
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
