"""A failed statement never carries its parameters (phone numbers, message texts) into an
exception text or a log line."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from wanotify.shared.db.engine import make_engine

PHONE = "+628114040707"
BODY = "Halo Budi, tagihan Anda Rp 150.000"


def test_a_database_error_shows_the_statement_but_not_its_parameters(database_url, caplog):
    engine = make_engine(database_url, pool_size=1)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(DBAPIError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT CAST(:phone AS text), CAST(:body AS text), 1 / 0"), {"phone": PHONE, "body": BODY})
    finally:
        engine.dispose()
    message = str(failed.value)
    assert "division by zero" in message and "SELECT CAST" in message
    assert "parameters hidden" in message
    for secret in (PHONE, "8114040707", BODY):
        assert secret not in message
        assert secret not in caplog.text
