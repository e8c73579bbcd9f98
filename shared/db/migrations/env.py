"""Alembic environment: the URL comes from the caller (``wanotify migrate``) or alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from wanotify.shared.db.models import Base

config = context.config
url: str = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""


def run() -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
