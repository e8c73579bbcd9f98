"""Migrations over databases in the states earlier releases left them in."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from wanotify.shared.db.engine import create_database_if_missing, drop_database, make_engine
from wanotify.shared.db.migrate import upgrade


def test_a_database_whose_0008_predates_the_waiting_index_migrates_to_the_latest(database_url):
    # The first release of 0008 had no ix_whatsapp_logs_waiting; 0011 rebuilds it, and must not
    # stop at its absence.
    url = make_url(database_url).set(database=f"wanotify_migrate_{uuid.uuid4().hex[:8]}")
    scratch = url.render_as_string(hide_password=False)
    create_database_if_missing(scratch)
    engine = make_engine(scratch, pool_size=1)
    try:
        upgrade(scratch, "0010")
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_whatsapp_logs_waiting"))
        upgrade(scratch)
        with engine.connect() as connection:
            indexes = {index["name"]: index for index in inspect(connection).get_indexes("whatsapp_logs")}
            version = connection.scalar(text("SELECT version_num FROM alembic_version"))
        assert indexes["ix_whatsapp_logs_waiting"]["column_names"] == ["status", "priority", "sender"]
        assert version == _head()
    finally:
        engine.dispose()
        drop_database(scratch)


def _head() -> str:
    from alembic.script import ScriptDirectory

    from wanotify.shared.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://unused/none")).get_current_head()
    assert head is not None
    return head
