"""8. webhook_abuse: the status webhook under bad and slow clients.

ONE ``wanotify run web --only webhook`` process (its default limits: 3 MiB bodies, 10 s for
headers and for the body, 100 connections) on 127.0.0.1, a message row whose receipts the
attackers try to forge, and three phases:

a) 1,000 bad requests from 16 threads, each on a new connection: negative, non-numeric,
   over-long, huge and missing Content-Length, missing, malformed, non-ASCII and wrong
   signatures (some on a well-formed receipt for the real message), and a few chunked
   bodies past the size limit. Counted by status code: none may be accepted (2xx), and the
   message must not move.
b) 50 slow clients held open (half stalled in their headers, half in their bodies) while
   valid signed receipts are sent one by one: each must be accepted within 1 s.
c) the server's RSS (psutil, sampled every 20 ms through a and b) must stay under 150 MB.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import create_engine, text

from bench import stats
from bench.config import DATABASE_URL
from bench.env import fresh_database, namespace, process_env, settings
from bench.procs import Proc
from bench.scenarios import Context, goal

SECRET, TOKEN = "bench-secret", "bench-token"
PATH = "/webhooks/whatsapp"
BAD_REQUESTS, THREADS, SLOW_CLIENTS, VALID_RECEIPTS = 1000, 16, 50, 5
OVERSIZED_EVERY = 50  # one request in 50 is a chunked body past the 3 MiB limit
LATENCY_GOAL_MS, RSS_GOAL_MB = 1000, 150


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    wamid = _add_message()
    env = process_env(settings(namespace("webhook")), WHATSAPP_VERIFY_TOKEN=TOKEN, WHATSAPP_APP_SECRET=SECRET)
    server = Proc("webhook", ["-m", "wanotify.ops.cli", "run", "web", "--only", "webhook", "--port", "0"], env, ctx.log_dir)
    try:
        port = int(re.findall(r"http://127\.0\.0\.1:(\d+)/", server.wait_for_log("web: serving"))[0])
        baseline_mb = server.rss() / 2**20
        with RssSampler(server) as rss:
            bad = _bad_requests(port, wamid)
            status_after_bad = _message_status(wamid)
            valid = _valid_under_slow_clients(port, wamid)
        status_after_valid = _message_status(wamid)
    finally:
        server.stop()
    accepted = sum(n for code, n in bad["statuses"].items() if code.startswith("2"))
    latency = stats.summary_ms([s for s, _ in valid])
    return {
        "metrics": {"bad_requests": BAD_REQUESTS, "bad_statuses": bad["statuses"], "bad_by_kind": bad["by_kind"],
                    "bad_seconds": bad["seconds"], "message_after_bad": status_after_bad,
                    "slow_clients": SLOW_CLIENTS, "valid_statuses": [code for _, code in valid],
                    "valid_latency_ms": [round(s * 1000, 1) for s, _ in valid],
                    "valid_latency_max_ms": latency["max_ms"], "message_after_valid": status_after_valid,
                    "server_rss_baseline_mb": round(baseline_mb, 1), "server_peak_rss_mb": round(rss.peak_mb, 1)},
        "goals": [goal("bad requests accepted", accepted, "==", 0),
                  goal("forged receipts applied", int(status_after_bad != "sent"), "==", 0),
                  goal("valid receipts accepted", sum(code == 200 for _, code in valid), "==", VALID_RECEIPTS),
                  goal("valid receipt latency max (ms), 50 slow clients", latency["max_ms"], "<=", LATENCY_GOAL_MS),
                  goal("server peak RSS (MB)", round(rss.peak_mb, 1), "<", RSS_GOAL_MB)],
    }


class RssSampler:
    """The server's peak resident memory, sampled in a thread while the block runs."""

    def __init__(self, proc: Proc, every: float = 0.02) -> None:
        self.proc, self.every, self.peak_mb = proc, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.proc.rss() / 2**20)
            self._stop.wait(self.every)


def _sign(body: bytes) -> bytes:
    return b"sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().encode()


def _receipt(wamid: str, status: str, timestamp: int) -> bytes:
    item = {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": "628114040707"}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [item]}}]}]}).encode()


def _head(*lines: bytes) -> bytes:
    return b"\r\n".join([f"POST {PATH} HTTP/1.1".encode(), b"Host: bench", *lines]) + b"\r\n\r\n"


def _kinds(wamid: str) -> dict[str, Callable[[], bytes]]:
    """Each bad request as the bytes it sends (the oversized one is sent by ``_oversized``)."""
    forged = _receipt(wamid, "read", 1)
    good_sig = _sign(forged)
    wrong_sig = b"sha256=" + b"0" * 64
    length = f"Content-Length: {len(forged)}".encode()
    return {
        "negative_length": lambda: _head(b"Content-Length: -1", b"X-Hub-Signature-256: " + good_sig) + forged,
        "non_numeric_length": lambda: _head(b"Content-Length: 12abc", b"X-Hub-Signature-256: " + good_sig) + forged,
        "overlong_length": lambda: _head(b"Content-Length: " + b"9" * 40, b"X-Hub-Signature-256: " + good_sig) + forged,
        "huge_length": lambda: _head(b"Content-Length: 999999999999", b"X-Hub-Signature-256: " + good_sig) + forged,
        "missing_length": lambda: _head(b"X-Hub-Signature-256: " + good_sig) + forged,
        "missing_signature": lambda: _head(length) + forged,
        "wrong_signature": lambda: _head(length, b"X-Hub-Signature-256: " + wrong_sig) + forged,
        "malformed_signature": lambda: _head(length, b"X-Hub-Signature-256: sha1=abc") + forged,
        "non_ascii_signature": lambda: _head(length, b"X-Hub-Signature-256: sha256=\xc3\xa9" + b"0" * 62) + forged,
    }


def _bad_requests(port: int, wamid: str) -> dict[str, Any]:
    kinds = _kinds(wamid)
    names = list(kinds)
    plan = ["oversized_chunked" if i % OVERSIZED_EVERY == 0 else names[i % len(names)] for i in range(BAD_REQUESTS)]
    began = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        codes = list(pool.map(lambda kind: _send_bad(port, kind, kinds), plan))
    by_kind: dict[str, Counter[str]] = {}
    for kind, code in zip(plan, codes, strict=True):
        by_kind.setdefault(kind, Counter())[code] += 1
    return {"statuses": dict(Counter(codes)), "by_kind": {k: dict(v) for k, v in by_kind.items()},
            "seconds": round(time.monotonic() - began, 2)}


def _send_bad(port: int, kind: str, kinds: dict[str, Callable[[], bytes]]) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        try:
            if kind == "oversized_chunked":
                _oversized(conn)
            else:
                conn.sendall(kinds[kind]())
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed while we were still sending
        return _status(conn)


def _oversized(conn: socket.socket) -> None:
    """A chunked body (no Content-Length) that goes past the 3 MiB limit, with a wrong signature."""
    conn.sendall(_head(b"Transfer-Encoding: chunked", b"X-Hub-Signature-256: sha256=" + b"1" * 64))
    chunk = b"x" * 65536
    for _ in range(56):  # 3.5 MiB
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def _status(conn: socket.socket) -> str:
    try:
        head = conn.recv(64)
    except (TimeoutError, ConnectionResetError):
        return "no reply"
    parts = head.split(b" ", 2)
    return parts[1].decode() if head.startswith(b"HTTP/1.1 ") and len(parts) > 1 else "no reply"


def _valid_under_slow_clients(port: int, wamid: str) -> list[tuple[float, int]]:
    slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(SLOW_CLIENTS)]
    try:
        for i, conn in enumerate(slow):  # half stall in their headers, half in their bodies
            conn.sendall(_head(b"Content-Length: 1000", b"X-Hub-Signature-256: " + _sign(b"x")) + b"{"
                         if i % 2 else f"POST {PATH} HTTP/1.1\r\nHost: bench\r\n".encode())
        time.sleep(0.5)  # all of them accepted and stalled
        return [_send_valid(port, wamid, status, t)
                for t, status in enumerate(["delivered", "read", "read", "read", "read"][:VALID_RECEIPTS], start=100)]
    finally:
        for conn in slow:
            conn.close()


def _send_valid(port: int, wamid: str, status: str, timestamp: int) -> tuple[float, int]:
    body = _receipt(wamid, status, timestamp)
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(_head(f"Content-Length: {len(body)}".encode(), b"X-Hub-Signature-256: " + _sign(body)) + body)
        code = _status(conn)
    return time.monotonic() - began, int(code) if code.isdigit() else 0


def _add_message() -> str:
    wamid = f"wamid.bench-{uuid.uuid4().hex}"
    engine = create_engine(DATABASE_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status, "
                "provider_message_id) VALUES (:e, 'member.registered', 't', '+628114040707', 'hi', 'normal', 'sent', :w)"),
                {"e": str(uuid.uuid4()), "w": wamid})
    finally:
        engine.dispose()
    return wamid


def _message_status(wamid: str) -> str:
    engine = create_engine(DATABASE_URL)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT status FROM whatsapp_logs WHERE provider_message_id = :w"),
                                    {"w": wamid}).scalar_one())
    finally:
        engine.dispose()
