"""The status webhook under a real uvicorn server: handshake, signatures, request limits.

Every refusal must be a clean 4xx/503 that arrives (never a hang, never a 500), and must
leave nothing behind in the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.web import (
    PATH,
    TOKEN,
    Served,
    add_message,
    count,
    empty_webhook_tables,
    encode,
    post_head,
    post_signed,
    read_reply,
    receipt,
    request,
    serve,
    sign,
    webhook_settings,
)
from wanotify.ops.web.limits import Limits

MAX_BODY = 64 * 1024
LIMITS = Limits(max_body_bytes=MAX_BODY, body_timeout_seconds=2.0, header_timeout_seconds=2.0, max_concurrency=60)


@pytest.fixture
def served(settings, sessions) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    empty_webhook_tables(sessions)
    with serve(webhook_settings(settings, webhook_max_body_bytes=MAX_BODY), LIMITS) as s:
        yield s


def handshake(served: Served, **params: str) -> requests.Response:
    return requests.get(served.url, params=params, timeout=5)


def test_the_handshake_echoes_the_challenge_only_for_the_right_token(served):
    ok = handshake(served, **{"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "42"})
    assert (ok.status_code, ok.text) == (200, "42")
    for token in ("no", "", "vérify-me", TOKEN + "x"):
        bad = handshake(served, **{"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"})
        assert bad.status_code == 403
    assert handshake(served, **{"hub.mode": "unsubscribe", "hub.verify_token": TOKEN, "hub.challenge": "1"}).status_code == 403


def test_healthz_says_ok_without_any_credentials(served):
    reply = requests.get(f"http://{served.host}:{served.port}/healthz", timeout=5)
    assert reply.status_code == 200 and reply.json()["status"] == "ok"


def test_a_post_without_a_signature_is_401_and_stores_nothing(served, sessions):
    body = encode(receipt(add_message(sessions), "read"))
    status, reply = request(served, post_head(len(body)), body)
    assert status == 401 and b"x-hub-signature-256 missing" in reply
    assert count(sessions, "webhook_payloads") == 0 and count(sessions, "webhook_receipts") == 0


@pytest.mark.parametrize("signature", [
    "sha256=" + "0" * 64,                              # well formed, wrong
    "sha256=zz",                                       # malformed
    "md5=abc",
    "",
    b"sha256=\xc3\xa9\xc3\xa9" + b"0" * 60,            # non-ASCII bytes
    "sha256=" + "é" * 64,
])
def test_a_wrong_or_malformed_signature_is_403_never_500(served, sessions, signature):
    wamid = add_message(sessions)
    body = encode(receipt(wamid, "read"))
    status, _ = request(served, post_head(len(body), signature), body)
    assert status == 403
    assert count(sessions, "webhook_payloads") == 0


def test_a_body_signed_with_another_secret_is_403_and_changes_nothing(served, sessions):
    wamid = add_message(sessions)
    status, _ = post_signed(served, encode(receipt(wamid, "read")), secret="wrong")
    assert status == 403
    assert count(sessions, "webhook_receipts") == 0


@pytest.mark.parametrize(("length", "expected"), [
    ("-1", 400), ("abc", 400), ("12abc", 400), ("1e3", 400), (" ", 400),
    ("99999999999999999999999999", 400),              # more digits than h11 accepts
    ("999999999999", 413), (str(MAX_BODY + 1), 413),   # sane numbers over the limit
])
def test_a_bad_content_length_gets_a_clean_4xx_at_once(served, length, expected):
    head = post_head(signature=sign(b"{}"), extra=f"Content-Length: {length}")
    began = time.monotonic()
    status, _ = request(served, head, b"{}", timeout=LIMITS.body_timeout_seconds + 3)
    assert status == expected
    assert time.monotonic() - began < LIMITS.body_timeout_seconds  # answered, not left to time out


def test_a_post_with_neither_content_length_nor_chunks_is_411(served):
    status, _ = request(served, post_head(None, sign(b"")))
    assert status == 411


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(served, sessions):
    with served.connect() as conn:
        conn.sendall(post_head(None, sign(b"x"), extra="Transfer-Encoding: chunked") + b"\r\n\r\n")
        chunk = b"x" * 8192
        sent = 0
        try:
            while sent <= MAX_BODY * 4:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        status, _ = read_reply(conn)
    assert status == 413
    assert count(sessions, "webhook_payloads") == 0


def test_a_chunked_body_within_the_limit_is_accepted(served, sessions):
    wamid = add_message(sessions)
    body = encode(receipt(wamid, "delivered"))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    status, _ = request(served, post_head(None, sign(body), extra="Transfer-Encoding: chunked"), chunks + b"0\r\n\r\n")
    assert status == 200


def test_a_signed_body_that_is_not_json_is_400(served):
    for body in (b"not json", b"\xff\xfe{", b'{"entry": ['):
        status, _ = post_signed(served, body)
        assert status == 400
    # JSON that carries nothing (null, like [] or a string) is kept and answered 200, not "not JSON"
    for body in (b"null", b"[]", b'"x"'):
        status, reply = post_signed(served, body)
        assert status == 200, reply


def test_the_signature_is_checked_on_the_raw_bytes_with_non_ascii_escaped_or_not(served, sessions):
    # Meta signs the body as sent, with non-ASCII escaped (\u00e9): re-serialising it would not match.
    for ensure_ascii in (True, False):
        wamid = add_message(sessions)
        payload = receipt(wamid, "read", errors=[{"code": 1, "title": "café ☕"}])
        body = json.dumps(payload, ensure_ascii=ensure_ascii).encode()
        assert json.dumps(json.loads(body)).encode() != body or ensure_ascii
        status, reply = post_signed(served, body)
        assert status == 200, reply
    assert count(sessions, "webhook_payloads") == 2


def test_a_client_that_sends_its_body_too_slowly_is_cut_off_while_others_are_served(served, sessions):
    # Given a client that sent its headers and part of its body, then stalls
    wamid = add_message(sessions)
    with served.connect() as slow:
        slow.sendall(post_head(1000, sign(b"x")) + b"\r\n\r\n" + b"{" * 10)
        began = time.monotonic()
        # When a valid receipt arrives meanwhile, it is applied
        status, _ = post_signed(served, encode(receipt(wamid, "delivered")))
        assert status == 200
        # Then the slow one is answered 408 once the body deadline has passed, not before
        slow_status, _ = read_reply(slow)
        assert slow_status == 408
        assert time.monotonic() - began >= LIMITS.body_timeout_seconds - 0.2


def test_a_client_that_never_finishes_its_headers_is_disconnected(served):
    with served.connect() as slow:
        slow.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: test\r\n")
        began = time.monotonic()
        assert slow.recv(100) == b""  # closed by the server, without a reply
        assert time.monotonic() - began >= LIMITS.header_timeout_seconds - 0.2


def test_many_slow_clients_do_not_keep_a_valid_receipt_out(served, sessions):
    wamid = add_message(sessions)
    slow = [served.connect() for _ in range(40)]
    try:
        for i, conn in enumerate(slow):  # half stall in their headers, half in their bodies
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" if i % 2 else post_head(500, sign(b"x")) + b"\r\n\r\n{")
        status, _ = post_signed(served, encode(receipt(wamid, "read")))
        assert status == 200
    finally:
        for conn in slow:
            conn.close()


def test_past_the_connection_limit_a_request_gets_503_at_once_and_is_served_after_the_slow_ones_go(settings, sessions):
    empty_webhook_tables(sessions)
    limits = Limits(max_concurrency=4, header_timeout_seconds=1.0, body_timeout_seconds=1.0)
    wamid = add_message(sessions)
    body = encode(receipt(wamid, "read"))
    with serve(webhook_settings(settings), limits) as served:
        idle = [served.connect() for _ in range(4)]
        time.sleep(0.2)  # let the server accept them all
        assert post_signed(served, body)[0] == 503
        for conn in idle:
            assert conn.recv(10) == b""  # dropped after the header deadline
            conn.close()
        assert post_signed(served, body)[0] == 200


def test_bodies_in_flight_share_one_memory_budget(settings, sessions):
    empty_webhook_tables(sessions)
    limits = Limits(max_body_bytes=64 * 1024, body_budget_bytes=16 * 1024, body_timeout_seconds=5.0)
    wamid = add_message(sessions)
    with serve(webhook_settings(settings), limits) as served, served.connect() as hog:
        # Given a request holding 12 KiB of the 16 KiB budget
        hog.sendall(post_head(20000, sign(b"x")) + b"\r\n\r\n" + b" " * 12 * 1024)
        time.sleep(0.3)
        # Then an 8 KiB body does not fit (503, Meta retries), and a small receipt still does
        big = encode({"pad": "x" * 8 * 1024})
        assert post_signed(served, big)[0] == 503
        assert post_signed(served, encode(receipt(wamid, "read")))[0] == 200


def test_refusals_close_the_connection_so_an_unread_body_cannot_linger(served):
    with served.connect() as conn:
        conn.sendall(post_head(MAX_BODY, None) + b"\r\n\r\n" + b"x" * 100)
        status, reply = read_reply(conn)
        assert status == 401 and b"connection: close" in reply.lower()
        assert conn.recv(10) == b""


def test_a_database_that_is_down_gets_503_so_meta_retries(settings, sessions):
    down = webhook_settings(settings, database_url="postgresql+psycopg2://postgres@127.0.0.1:1/wanotify")
    with serve(down, LIMITS) as served:
        status, reply = post_signed(served, encode(receipt("wamid.x", "read")))
    assert status == 503 and b"retry-after" in reply.lower()

