"""A local stand-in for the WhatsApp Business Management API's template list, serving JSON fixtures.

``GET /{version}/{waba_id}/message_templates`` answers tests/fixtures/meta/message_templates_page1.json,
and its ``paging.next`` (``after=…``) page 2, in the API's shape; only with the expected bearer token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meta"
WABA_ID = "102290129340398"
TOKEN = "graph-token"


@dataclass
class GraphStub:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse: tuple[int, dict[str, Any]] | None = None  # answer every request with this (status, body)

    def page(self, name: str) -> dict[str, Any]:
        text = (FIXTURES / name).read_text(encoding="utf-8")
        return dict(json.loads(text.replace("{base}", self.url).replace("{waba_id}", WABA_ID)))


def _handler(stub: GraphStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            stub.requests.append({"path": parts.path, "query": query, "authorization": self.headers.get("Authorization")})
            if stub.refuse is not None:
                self._answer(*stub.refuse)
            elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._answer(401, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                             "code": 190}})
            elif parts.path != f"/v21.0/{WABA_ID}/message_templates":
                self._answer(404, {"error": {"message": "Unknown path", "code": 100}})
            else:
                second = query.get("after") == ["QVFIUmlBZAU2"]
                self._answer(200, stub.page("message_templates_page2.json" if second else "message_templates_page1.json"))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def graph_api() -> Iterator[GraphStub]:
    stub = GraphStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
