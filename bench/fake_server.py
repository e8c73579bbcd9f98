"""``python -m bench.fake_server``: the product's fake provider, with Nagle's algorithm off.

``wanotify.ops.fake_provider`` answers with two writes (headers, then body) on a socket without
TCP_NODELAY, so the body waits for the client's delayed ACK: every call takes ~40 ms on
loopback, which would make the fake, not the sender, the bottleneck. This runs the same server
and handler, only with ``disable_nagle_algorithm`` set, and prints nothing per call.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time

from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.ops.fake_provider.handler import FakeHandler


class NoDelayHandler(FakeHandler):
    disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY on each connection
    _arrived = 0.0

    def parse_request(self) -> bool:
        self._arrived = time.time()  # the request line is in; headers not parsed yet
        return super().parse_request()

    def do_POST(self) -> None:
        self._dispatch(self._arrived)


class NagleHandler(NoDelayHandler):
    disable_nagle_algorithm = False


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on (~40 ms per call)")
    args = parser.parse_args()
    server = FakeProviderServer("127.0.0.1", args.port)
    server._http.RequestHandlerClass = NagleHandler if args.nagle else NoDelayHandler
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    with server:
        print(f"fake WhatsApp provider listening on {server.url}", flush=True)
        while not stop.wait(0.2):
            pass


if __name__ == "__main__":
    main()
