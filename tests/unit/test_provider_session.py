"""The provider's HTTP session reads the environment's proxy and CA settings once, when it is built."""

from __future__ import annotations

import pytest

from wanotify.consumers.providers import base

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


def test_a_call_does_not_read_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    session = base.build_session(URL)
    reads: list[str] = []
    monkeypatch.setattr(base.requests.sessions, "get_environ_proxies",
                        lambda url, no_proxy=None: reads.append(url) or {})
    settings = session.merge_environment_settings(URL, {}, None, None, None)
    assert reads == []
    assert settings["proxies"] == {}
