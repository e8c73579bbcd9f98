"""The provider's HTTP session reads the environment's proxy and CA settings once, when it is built."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import trustme

from wanotify.consumers.providers import base
from wanotify.shared.errors import ConfigError, TransientError

URL = "https://graph.example.test/v21.0/123/messages"


@pytest.fixture(autouse=True)
def _clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_a_proxy_in_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = base.build_session(URL)
    assert session.proxies.get("https") == "http://proxy.internal:3128"


def test_no_proxy_for_the_provider_host_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "graph.example.test")
    assert not base.build_session(URL).proxies


def test_a_ca_bundle_in_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert base.build_session(URL).verify == str(bundle)


def test_a_missing_ca_bundle_named_in_the_environment_stops_the_provider_at_start_up(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    with pytest.raises(ConfigError, match=r"TLS settings for graph\.example\.test cannot be used: .*gone\.pem"):
        base.HttpClient(URL, timeout_seconds=1.0)


class _Proxy(BaseHTTPRequestHandler):
    """An HTTP proxy that answers every request itself, keeping the request line's target."""

    targets: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.targets.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_call_goes_through_the_proxy_the_environment_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _Proxy.targets.clear()
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
        target = "http://provider.invalid/v21.0/123/messages"  # a host no resolver knows: only the proxy answers
        client = base.HttpClient(target, timeout_seconds=5.0)
        reply = client.perform(client.prepare("POST", target, json_body={"to": "628114040707"}))
        client.close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert (reply.status_code, base.json_or_none(reply)) == (200, {"ok": True})
    assert _Proxy.targets == [target]  # the absolute form a proxy is asked for


def test_a_call_does_not_read_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    _Proxy.targets.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"http://127.0.0.1:{server.server_port}/v21.0/123/messages"
        client = base.HttpClient(target, timeout_seconds=5.0)
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # set after start-up: nothing listens there
        reply = client.perform(client.prepare("POST", target, json_body={"to": "628114040707"}))
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert reply.status_code == 200
    assert _Proxy.targets == ["/v21.0/123/messages"]  # sent straight to the provider, as at start-up


def test_a_call_is_encoded_once_with_the_session_s_headers_and_its_own() -> None:
    client = base.HttpClient("http://gw.example.test/send?v=2", timeout_seconds=1.0, extra_headers={"X-Team": "ops"})
    form = client.prepare("POST", "http://gw.example.test/send?v=2", params={"api_key": "k 1"},
                          form={"to": "628114040707", "text": "Halo & selamat"}, headers={"X-Key": "s"})
    assert form.url == "http://gw.example.test/send?v=2&api_key=k+1"
    assert form.body == b"to=628114040707&text=Halo+%26+selamat"
    assert (form.headers["Content-Type"], form.headers["X-Team"], form.headers["X-Key"]) == (
        "application/x-www-form-urlencoded", "ops", "s")
    as_json = client.prepare("POST", "http://gw.example.test/send", json_body={"text": "Rp 150.000 ✓"})
    assert json.loads(as_json.body or b"") == {"text": "Rp 150.000 ✓"}
    assert as_json.headers["Content-Type"] == "application/json" and "X-Key" not in as_json.headers
    with pytest.raises(ValueError, match="not JSON compliant"):
        client.prepare("POST", "http://gw.example.test/send", json_body={"amount": float("nan")})
    client.close()


@pytest.fixture()
def https_server(tmp_path):  # type: ignore[no-untyped-def]
    """A local HTTPS server whose certificate only a throwaway CA trusts; yields (url, CA bundle path)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_port}/v21.0/123/messages", bundle
    finally:
        server.shutdown()
        server.server_close()


def test_a_call_over_https_checks_the_certificate_against_the_ca_bundle(
        https_server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, bundle = https_server
    _Proxy.targets.clear()
    untrusted = base.HttpClient(url, timeout_seconds=5.0)  # the default bundle does not know the throwaway CA
    with pytest.raises(TransientError, match=r"network error calling POST localhost:\d+/v21.0/123/messages \(SSLError\)"):
        untrusted.perform(untrusted.prepare("POST", url, json_body={"to": "628114040707"}))
    untrusted.close()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    trusted = base.HttpClient(url, timeout_seconds=5.0)
    reply = trusted.perform(trusted.prepare("POST", url, json_body={"to": "628114040707"}))
    trusted.close()
    assert (reply.status_code, base.json_or_none(reply)) == (200, {"ok": True})
    assert _Proxy.targets == ["/v21.0/123/messages"]
