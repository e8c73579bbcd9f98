"""What Meta reported, in tests: emptied between tests, template mappings set directly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import Recipient, Template

META_TABLES = "recipients, meta_templates, account_events, phone_number_state, meta_event_keys"


def empty_meta_tables(sessions: sessionmaker[Session]) -> None:
    """Forget recipients and everything Meta reported, and every template mapping."""
    with transaction(sessions) as session:
        session.execute(text(f"TRUNCATE {META_TABLES}, webhook_receipts, webhook_payloads"))
        session.execute(update(Template).values(meta_name=None, meta_language=None, meta_category=None,
                                                meta_params=None))


def map_template(sessions: sessionmaker[Session], key: str, meta_name: str, language: str = "id",
                 params: Any = None, category: str = "utility") -> None:
    with transaction(sessions) as session:
        session.execute(update(Template).where(Template.key == key).values(
            meta_name=meta_name, meta_language=language, meta_category=category, meta_params=params))


def recipient(sessions: sessionmaker[Session], phone: str) -> Recipient | None:
    with sessions() as session:
        return session.get(Recipient, phone)


def rows(sessions: sessionmaker[Session], sql: str) -> list[Any]:
    with sessions() as session:
        return [tuple(row) for row in session.execute(text(sql))]
