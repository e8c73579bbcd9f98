"""``wanotify fake-provider``: run the fake in the foreground and print each message it receives."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from wanotify.ops.fake_provider.server import FakeProviderServer
from wanotify.ops.fake_provider.state import FAILURE_MODES

DEFAULT_PORT = 8089
TEXT_PREVIEW_CHARS = 60


def mask_number(number: str | None) -> str:
    """Keep the first 4 and last 2 digits, so a log line identifies a number without exposing it."""
    digits = "".join(ch for ch in number or "" if ch.isdigit())
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 6) + digits[-2:]


def format_call(call: dict[str, Any]) -> str:
    """One line per received message: time, masked number, outcome, start of the text."""
    stamp = time.strftime("%H:%M:%S", time.localtime(call["t"])) + f".{int(call['t'] * 1000) % 1000:03d}"
    text = " ".join((call.get("body") or "").split())[:TEXT_PREVIEW_CHARS]
    return f"{stamp} {mask_number(call.get('to'))} {call['outcome']} {call['status']} {text}"


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``; handlers can only be installed from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, latency: float = 0.0, timeout_sleep: float = 5.0,
          failure_rate: float = 0.0, failure_mode: str = "5xx", seed: int | None = None,
          out: TextIO | None = None, stop: threading.Event | None = None, strict: bool = False) -> None:
    """Serve until SIGINT/SIGTERM (or until ``stop`` is set), printing one line per message.

    ``strict``: like the real Cloud API, refuse text outside a recipient's window (131047) and
    templates not registered through the control API (132001/132000)."""
    stream = out or sys.stdout
    stop = stop or threading.Event()

    def print_call(call: dict[str, Any]) -> None:
        print(format_call(call), file=stream, flush=True)

    server = FakeProviderServer(host, port, latency=latency, timeout_sleep=timeout_sleep, on_call=print_call,
                                strict=strict)
    if failure_rate:
        server.set_failure_rate(failure_rate, failure_mode, seed)
    with _stop_on_signals(stop):
        server.start()
        try:
            mode = " (strict: window and approved templates enforced)" if strict else ""
            print(f"fake WhatsApp provider listening on {server.url}{mode}", file=stream, flush=True)
            # Short waits: a signal delivered to a server thread only runs its Python handler
            # once the main thread wakes up, so an unbounded wait would delay shutdown.
            while not stop.wait(0.1):
                pass
        finally:
            server.stop()


def build_parser() -> argparse.ArgumentParser:
    """Options of ``wanotify fake-provider``."""
    parser = argparse.ArgumentParser(prog="wanotify fake-provider", description="Run a local fake WhatsApp API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (printed at start)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--timeout-sleep", type=float, default=5.0, help="seconds 'timeout' mode stalls")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="probability that a message fails")
    parser.add_argument("--failure-mode", choices=FAILURE_MODES, default="5xx")
    parser.add_argument("--seed", type=int, default=None, help="seed for repeatable random failures")
    parser.add_argument("--strict", action="store_true",
                        help="refuse text outside a recipient's window and unregistered templates, like the real API")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``wanotify fake-provider`` and ``python -m wanotify.ops.fake_provider``."""
    args = build_parser().parse_args(argv)
    serve(args.host, args.port, latency=args.latency, timeout_sleep=args.timeout_sleep,
          failure_rate=args.failure_rate, failure_mode=args.failure_mode, seed=args.seed, strict=args.strict)
    return 0
