"""The web app's pieces that need no server: parts, Content-Length, signatures, receipt parsing."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from starlette.datastructures import Headers

from wanotify.ops.web.app import PARTS, create_app, select_parts
from wanotify.ops.web.limits import BodyBudget, Limits, Refused, declared_length
from wanotify.ops.web.signatures import signature_matches, token_matches, well_formed
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError
from wanotify.shared.receipts import Receipt, parse_receipts

LIMITS = Limits(max_body_bytes=1000)


def test_only_selects_existing_parts_and_names_the_available_ones_otherwise():
    assert select_parts(None) == tuple(PARTS) and select_parts(None)[-1] == "console"  # "/" is routed last
    assert select_parts("console,webhook") == ("webhook", "console")
    assert select_parts(" webhook ,") == ("webhook",)
    with pytest.raises(ConfigError, match=r"unknown part.*'nonsense'.*available parts: webhook"):
        select_parts("webhook,nonsense")
    with pytest.raises(ConfigError, match="no part given"):
        select_parts(",")


def test_the_app_refuses_to_be_built_with_the_webhook_but_without_its_secrets():
    with pytest.raises(ConfigError, match="WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET"):
        create_app(Settings.from_env({}), ["webhook"])


@pytest.mark.parametrize(("headers", "refusal"), [
    ({}, 411),
    ({"content-length": "-1"}, 400),
    ({"content-length": "abc"}, 400),
    ({"content-length": "1²"}, 400),  # "²".isdigit(), but not an ASCII digit
    ({"content-length": "1001"}, 413),
    ({"content-length": "9" * 5000}, 413),
])
def test_a_content_length_that_cannot_be_trusted_is_refused(headers, refusal):
    with pytest.raises(Refused) as caught:
        declared_length(Headers(headers), LIMITS)
    assert caught.value.status == refusal


def test_a_sane_content_length_or_a_chunked_body_is_read():
    assert declared_length(Headers({"content-length": "1000"}), LIMITS) == 1000
    assert declared_length(Headers({"transfer-encoding": "chunked"}), LIMITS) is None


def test_the_body_budget_refuses_what_does_not_fit_and_is_returned_after_each_request():
    budget = BodyBudget(100)
    with budget.lease() as first:
        first.take(80)
        with budget.lease() as second, pytest.raises(Refused) as caught:
            second.take(30)
        assert caught.value.status == 503 and budget.used == 80
    assert budget.used == 0


def test_signatures_are_compared_as_bytes_so_any_header_is_just_wrong():
    body = b'{"a":"\\u00e9"}'
    good = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    assert signature_matches("s", body, good) and well_formed(good)
    for bad in ("sha256=" + "é" * 64, "\x00", "sha256=" + good[7:].upper(), good + " x"):
        assert not signature_matches("s", body, bad)
    assert not well_formed("sha256=" + "é" * 64)
    assert token_matches("tok", "tok") and not token_matches("tok", "tök")


def test_receipts_are_parsed_from_statuses_and_malformed_items_skipped():
    items = [{"id": "w1", "status": "read", "timestamp": "1763800000",
              "errors": [{"code": 131026, "title": "Undeliverable"}]},
             {"id": "w2", "status": "read"},                      # no timestamp
             {"id": "w3", "status": "read", "timestamp": "-5"},
             {"id": 4, "status": "read", "timestamp": "1"},
             {"id": "w5", "status": "x" * 50, "timestamp": "1"},
             "junk"]
    payload = {"entry": [{"changes": [{"value": {"statuses": items}}, {"value": None}]}, 7]}
    assert parse_receipts(payload) == [Receipt("w1", "read", datetime.fromtimestamp(1763800000, UTC),
                                               "(131026) Undeliverable")]


def test_the_webhook_limits_come_from_the_environment():
    settings = Settings.from_env({"WEBHOOK_MAX_BODY_BYTES": "1024", "WEBHOOK_RETENTION_DAYS": "2.5"})
    assert (settings.webhook_max_body_bytes, settings.webhook_retention_days) == (1024, 2.5)
    assert Limits.from_settings(settings).max_body_bytes == 1024
    assert Settings.from_env({}).webhook_max_body_bytes == 3 * 1024 * 1024
    with pytest.raises(ConfigError, match="WEBHOOK_MAX_BODY_BYTES"):
        Settings.from_env({"WEBHOOK_MAX_BODY_BYTES": "0"})
