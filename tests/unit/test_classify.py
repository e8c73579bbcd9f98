"""How provider answers are sorted into retry-later, pause, and give-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError

from wanotify.consumers.providers.classify import (
    PERMANENT_META_CODES,
    QUALITY_META_CODES,
    TEMPLATE_META_CODES,
    TRANSIENT_META_CODES,
    NeedsTemplate,
    RecipientOptedOut,
    TemplateRefused,
    classify_gateway_rejection,
    classify_http_status,
    classify_meta_error,
    classify_network_error,
    parse_retry_after,
)
from wanotify.shared.errors import PermanentError, QualityLimitError, TransientError


def meta_error(code: int, message: str = "Something", details: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def test_the_code_lists_match_the_documented_cloud_api_codes() -> None:
    assert {130429, 131056, 131000, 131016, 1, 2, 4, 80007} == TRANSIENT_META_CODES
    assert {131048, 131049, 368} == QUALITY_META_CODES
    assert {131026, 131051, 100, 131008, 190} == PERMANENT_META_CODES
    assert {132000, 132001, 132005, 132007, 132012, 132015, 132016} == set(TEMPLATE_META_CODES)


@pytest.mark.parametrize("code", sorted(TRANSIENT_META_CODES))
def test_a_transient_meta_code_is_retried_without_pausing(code: int) -> None:
    # Sent with a 400 on purpose: the code decides, not the HTTP status.
    error = classify_meta_error(400, meta_error(code))
    assert type(error) is TransientError
    assert error.code == f"meta_{code}"


@pytest.mark.parametrize("code", sorted(QUALITY_META_CODES))
def test_a_quality_meta_code_asks_to_pause_sending(code: int) -> None:
    error = classify_meta_error(400, meta_error(code))
    assert isinstance(error, QualityLimitError)
    assert isinstance(error, TransientError)
    assert error.code == f"meta_{code}"


@pytest.mark.parametrize("code", sorted(PERMANENT_META_CODES))
def test_a_permanent_meta_code_is_not_retryable(code: int) -> None:
    # Sent with a 503 on purpose: the code still wins over the status.
    error = classify_meta_error(503, meta_error(code))
    assert isinstance(error, PermanentError)
    assert not isinstance(error, TransientError)
    assert error.code == f"meta_{code}"


def test_the_message_names_status_code_and_reason_without_repeating_the_code() -> None:
    error = classify_meta_error(400, meta_error(131026, "Message undeliverable"))
    assert str(error) == "HTTP 400 (#131026) Message undeliverable"


def test_error_data_details_are_appended_to_the_message() -> None:
    error = classify_meta_error(400, meta_error(131026, "Message undeliverable", details="Not on WhatsApp"))
    assert str(error) == "HTTP 400 (#131026) Message undeliverable: Not on WhatsApp"


def test_131047_means_the_message_needs_a_template_not_a_plain_park() -> None:
    # Sent with a 503 on purpose: the code decides.
    error = classify_meta_error(503, meta_error(131047, "Re-engagement message", details="More than 24 hours"))
    assert type(error) is NeedsTemplate and isinstance(error, PermanentError)
    assert error.code == "meta_131047"
    assert str(error).startswith("HTTP 503 (#131047) Re-engagement message: More than 24 hours — ")
    assert "only an approved template" in str(error)


def test_131050_marks_the_recipient_opted_out() -> None:
    error = classify_meta_error(400, meta_error(131050, "Unable to deliver"))
    assert type(error) is RecipientOptedOut
    assert error.code == "opted_out"
    assert "stopped marketing messages" in str(error)


@pytest.mark.parametrize(("code", "label", "fix", "status"), [
    (132000, "meta_132000", "number of parameters does not match", None),
    (132001, "meta_132001", "does not exist in that language", None),
    (132005, "meta_132005", "too long", None),
    (132007, "meta_132007", "policy", None),
    (132012, "meta_132012", "format the template expects", None),
    (132015, "template_paused", "paused for low quality", "PAUSED"),
    (132016, "template_disabled", "map another approved template", "DISABLED"),
])
def test_each_template_code_is_parked_with_a_reason_that_says_what_to_fix(code: int, label: str, fix: str,
                                                                         status: str | None) -> None:
    error = classify_meta_error(400, meta_error(code, "Template trouble"))
    assert type(error) is TemplateRefused and isinstance(error, PermanentError)
    assert not isinstance(error, TransientError)
    assert error.code == label
    assert str(error).startswith(f"HTTP 400 (#{code}) Template trouble — ")
    assert fix in str(error) and "replay" in str(error)
    assert error.status == status  # 132015/132016 also tell the sender Meta's new template status


@pytest.mark.parametrize(("status", "expected"), [(500, TransientError), (429, TransientError), (400, PermanentError)])
def test_an_unknown_meta_code_falls_back_on_the_http_status(status: int, expected: type[Exception]) -> None:
    error = classify_meta_error(status, meta_error(999999, "New thing"))
    assert type(error) is expected
    assert error.code == "meta_999999"
    assert "(#999999) New thing" in str(error)


@pytest.mark.parametrize("payload", [None, "oops", {"error": "plain string"}, {"error": {"message": "no code"}}])
def test_a_body_without_a_meta_error_code_is_judged_by_status(payload: object) -> None:
    transient = classify_meta_error(502, payload)
    permanent = classify_meta_error(404, payload)
    assert type(transient) is TransientError
    assert transient.code == "http_502"
    assert type(permanent) is PermanentError
    assert permanent.code == "http_404"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599, 429, 408])
def test_server_errors_and_throttling_statuses_are_transient(status: int) -> None:
    error = classify_http_status(status, detail="busy")
    assert type(error) is TransientError
    assert error.code == f"http_{status}"
    assert str(error) == f"HTTP {status} busy"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 302])
def test_other_client_errors_are_permanent(status: int) -> None:
    error = classify_http_status(status)
    assert type(error) is PermanentError
    assert error.code == f"http_{status}"
    assert str(error) == f"HTTP {status}"


def test_a_long_detail_is_shortened_to_one_line() -> None:
    error = classify_http_status(500, detail="<html>\n" + "x" * 1000)
    assert "\n" not in str(error)
    assert len(str(error)) < 220


def test_retry_after_in_seconds_is_read() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5


def test_retry_after_as_an_http_date_becomes_seconds_from_now() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(90.0)


def test_a_retry_after_date_in_the_past_means_retry_now() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-5") == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf"])
def test_a_missing_or_unreadable_retry_after_is_ignored(header: str | None) -> None:
    assert parse_retry_after(header) is None


def test_retry_after_is_attached_to_transient_errors() -> None:
    headers = CaseInsensitiveDict({"retry-after": "7"})
    throttled = classify_http_status(429, headers=headers)
    rate_limited = classify_meta_error(429, meta_error(130429), headers)
    quality = classify_meta_error(400, meta_error(131048), headers)
    assert isinstance(throttled, TransientError) and throttled.retry_after == 7.0
    assert isinstance(rate_limited, TransientError) and rate_limited.retry_after == 7.0
    assert isinstance(quality, QualityLimitError) and quality.retry_after == 7.0


def test_a_transient_error_without_retry_after_leaves_the_delay_to_the_queues() -> None:
    error = classify_http_status(503)
    assert isinstance(error, TransientError)
    assert error.retry_after is None


@pytest.mark.parametrize("reason", [
    "Invalid number", "invalid phone number", "Number not registered on WhatsApp",
    "The destination number is not registered", "nomor tidak terdaftar", "target unregistered",
])
def test_a_gateway_refusal_for_a_bad_number_is_permanent(reason: str) -> None:
    error = classify_gateway_rejection(reason)
    assert type(error) is PermanentError
    assert error.code == "gateway_invalid_number"
    assert reason in str(error)


@pytest.mark.parametrize("reason", ["Device not connected", "Session not ready", "failed", "", "Invalid api key"])
def test_any_other_gateway_refusal_is_transient(reason: str) -> None:
    error = classify_gateway_rejection(reason)
    assert type(error) is TransientError
    assert error.code == "gateway_rejected"


@pytest.mark.parametrize("exc", [ReadTimeoutError(None, "/send", "read timed out"),
                                 ConnectTimeoutError("connect timed out")])
def test_timeouts_are_transient_with_code_timeout(exc: Exception) -> None:
    error = classify_network_error(exc, "POST example.test/send-message")
    assert type(error) is TransientError
    assert error.code == "timeout"
    assert "example.test/send-message" in str(error)


def test_a_connection_error_never_repeats_the_url_with_its_api_key() -> None:
    exc = ProtocolError("Connection aborted: /send-message?api_key=s3cret-key")
    error = classify_network_error(exc, "GET gw.example.test/send-message")
    assert type(error) is TransientError
    assert error.code == "network"
    assert "s3cret-key" not in str(error)
    assert "ProtocolError" in str(error)


def test_a_refused_connection_is_a_network_error_though_urllib3_files_it_under_connect_timeouts() -> None:
    exc = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    assert isinstance(exc, ConnectTimeoutError)
    assert classify_network_error(exc, "POST example.test/send").code == "network"
