"""Provider adapters against the local fake WhatsApp server, over real loopback HTTP."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from wanotify.consumers.providers import (
    FakeProvider,
    GatewayProvider,
    MetaCloudProvider,
    OutgoingMessage,
    Provider,
    make_provider,
)
from wanotify.consumers.providers.classify import NeedsTemplate, RecipientOptedOut, TemplateRefused
from wanotify.consumers.providers.meta import message_payload
from wanotify.ops.fake_provider import FakeProviderServer, serve
from wanotify.shared.config import WhatsAppSettings
from wanotify.shared.errors import ConfigError, PermanentError, QualityLimitError, TransientError
from wanotify.shared.meta_templates import TemplateCall

TOKEN = "test-access-token-do-not-leak"
API_KEY = "test-api-key-do-not-leak"
MESSAGE = OutgoingMessage(log_id=7, recipient="+628114040707", body="Halo Budi, pesanan Anda dikirim.",
                          template="order_shipped", language="id")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(timeout_sleep=1.0) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_fake(fake: FakeProviderServer) -> None:
    fake.reset()
    fake.clear_failures()
    fake.timeout_sleep = 1.0


def meta_settings(base_url: str | None, **changes: Any) -> WhatsAppSettings:
    values: dict[str, Any] = {"provider": "meta", "base_url": base_url, "phone_number_id": "1234567890",
                              "access_token": TOKEN, "timeout_seconds": 5.0, **changes}
    return WhatsAppSettings(**values)


def gateway_settings(base_url: str | None, api_key: str | None = API_KEY, **options: str) -> WhatsAppSettings:
    return WhatsAppSettings(provider="gateway", base_url=base_url, api_key=api_key, sender="628000111222",
                            timeout_seconds=5.0, gateway=options)


def send_with(provider: Provider) -> Any:
    try:
        return provider.send(MESSAGE)
    finally:
        provider.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_meta_adapter_sends_a_text_message_and_returns_the_wamid(fake: FakeProviderServer) -> None:
    before = time.time()
    result = send_with(MetaCloudProvider(meta_settings(fake.url)))
    [call] = fake.calls()
    assert result.provider_message_id is not None and result.provider_message_id.startswith("wamid.")
    assert call["message_id"] == result.provider_message_id
    assert call["path"] == "/v21.0/1234567890/messages"
    assert (call["to"], call["body"], call["credential"]) == ("628114040707", MESSAGE.body, TOKEN)
    assert (call["seq"], call["outcome"], call["status"]) == (1, "ok", 200)
    assert before <= call["t"] <= time.time()


@pytest.mark.parametrize(("mode", "error_class", "code", "retry_after"), [
    ("5xx", TransientError, "meta_2", None),
    ("429", TransientError, "meta_130429", 1.0),
    ("pair", TransientError, "meta_131056", None),
    ("quality", QualityLimitError, "meta_131048", None),
    ("permanent", PermanentError, "meta_131026", None),
])
def test_each_injected_meta_failure_raises_the_matching_error(
        fake: FakeProviderServer, mode: str, error_class: type[Exception], code: str,
        retry_after: float | None) -> None:
    fake.fail_next(1, mode)
    with pytest.raises(error_class) as caught:
        send_with(MetaCloudProvider(meta_settings(fake.url)))
    assert type(caught.value) is error_class
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert TOKEN not in str(caught.value)
    assert fake.calls()[0]["outcome"] == "error"


def test_a_permanent_meta_error_is_not_retryable(fake: FakeProviderServer) -> None:
    fake.fail_next(1, "permanent")
    with pytest.raises(PermanentError) as caught:
        send_with(MetaCloudProvider(meta_settings(fake.url)))
    assert not isinstance(caught.value, TransientError)
    assert str(caught.value) == "HTTP 400 (#131026) Message undeliverable"


def test_only_the_next_n_requests_fail_and_then_sending_recovers(fake: FakeProviderServer) -> None:
    provider = MetaCloudProvider(meta_settings(fake.url))
    fake.fail_next(2, "5xx")
    outcomes = []
    for _ in range(3):
        try:
            provider.send(MESSAGE)
            outcomes.append("ok")
        except TransientError as exc:
            outcomes.append(exc.code)
    provider.close()
    assert outcomes == ["meta_2", "meta_2", "ok"]
    assert [call["seq"] for call in fake.calls()] == [1, 2, 3]


def test_a_stalled_provider_raises_a_timeout_error_quickly(fake: FakeProviderServer) -> None:
    fake.fail_next(1, "timeout")
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        send_with(MetaCloudProvider(meta_settings(fake.url, timeout_seconds=0.3)))
    assert time.monotonic() - started < 0.9  # the client gave up; it did not wait for the 503
    assert caught.value.code == "timeout"
    assert fake.calls()[0]["outcome"] == "timeout"


def test_an_unreachable_provider_raises_a_network_error() -> None:
    with pytest.raises(TransientError) as caught:
        send_with(MetaCloudProvider(meta_settings(f"http://127.0.0.1:{free_port()}", timeout_seconds=2.0)))
    assert caught.value.code == "network"
    assert TOKEN not in str(caught.value)


def test_a_stopped_fake_also_drops_the_clients_kept_alive_connection() -> None:
    server = FakeProviderServer().start()
    provider = MetaCloudProvider(meta_settings(server.url, timeout_seconds=2.0))
    assert provider.send(MESSAGE).provider_message_id
    server.stop()
    with pytest.raises(TransientError) as caught:
        provider.send(MESSAGE)
    provider.close()
    assert caught.value.code == "network"


@pytest.mark.parametrize(("missing", "variable"), [
    ({"phone_number_id": None}, "WHATSAPP_PHONE_NUMBER_ID"),
    ({"access_token": None}, "WHATSAPP_ACCESS_TOKEN"),
    ({"base_url": "graph.facebook.com"}, "WHATSAPP_API_BASE_URL"),
])
def test_unusable_meta_settings_are_a_config_error_naming_the_variable(missing: dict[str, Any], variable: str) -> None:
    settings = replace(meta_settings("https://graph.example.test"), **missing)
    with pytest.raises(ConfigError, match=variable):
        MetaCloudProvider(settings)


@pytest.mark.parametrize(("settings", "variable"), [
    (gateway_settings(None), "WHATSAPP_API_BASE_URL"),
    (gateway_settings("http://gw.example.test", api_key=None), "WHATSAPP_API_KEY"),
    (gateway_settings("http://gw.example.test", sucess_field="status"), "WHATSAPP_GATEWAY_SUCESS_FIELD"),
    (gateway_settings("http://gw.example.test", method="GET", encoding="json"), "WHATSAPP_GATEWAY_ENCODING"),
    (gateway_settings("http://gw.example.test", key_in="cookie"), "WHATSAPP_GATEWAY_KEY_IN"),
])
def test_unusable_gateway_settings_are_a_config_error_naming_the_variable(
        settings: WhatsAppSettings, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        GatewayProvider(settings)


@pytest.mark.parametrize(("options", "method", "to"), [
    ({}, "POST", "628114040707"),
    ({"encoding": "json"}, "POST", "628114040707"),
    ({"method": "GET"}, "GET", "628114040707"),
    ({"key_in": "header"}, "POST", "628114040707"),
    ({"key_in": "query", "encoding": "json"}, "POST", "628114040707"),
    ({"number_format": "plus", "method": "get", "encoding": "query"}, "GET", "+628114040707"),
])
def test_the_gateway_adapter_round_trips_in_every_request_shape(
        fake: FakeProviderServer, options: dict[str, str], method: str, to: str) -> None:
    settings = gateway_settings(fake.url, success_field="status", id_field="data.id", **options)
    result = send_with(GatewayProvider(settings))
    [call] = fake.calls()
    assert (call["route"], call["method"], call["path"]) == ("gateway", method, "/send-message")
    assert (call["to"], call["body"], call["sender"]) == (to, MESSAGE.body, "628000111222")
    assert call["credential"] == API_KEY
    assert result.provider_message_id == call["message_id"]


def test_without_an_id_field_the_gateway_result_has_no_id(fake: FakeProviderServer) -> None:
    result = send_with(GatewayProvider(gateway_settings(fake.url, sender_field="")))
    [call] = fake.calls()
    assert result.provider_message_id is None
    assert call["outcome"] == "ok" and call["sender"] is None


@pytest.mark.parametrize(("mode", "error_class", "code"), [
    ("permanent", PermanentError, "gateway_invalid_number"),
    ("quality", TransientError, "gateway_rejected"),
    ("5xx", TransientError, "http_503"),
    ("429", TransientError, "http_429"),
])
def test_gateway_failures_map_onto_the_same_error_classes(
        fake: FakeProviderServer, mode: str, error_class: type[Exception], code: str) -> None:
    fake.fail_next(1, mode)
    with pytest.raises(error_class) as caught:
        send_with(GatewayProvider(gateway_settings(fake.url, success_field="status")))
    assert type(caught.value) is error_class
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert API_KEY not in str(caught.value)


def test_an_api_key_in_the_query_string_never_reaches_a_network_error() -> None:
    settings = replace(gateway_settings(f"http://127.0.0.1:{free_port()}", key_in="query"), timeout_seconds=2.0)
    with pytest.raises(TransientError) as caught:
        send_with(GatewayProvider(settings))
    assert caught.value.code == "network"
    assert API_KEY not in str(caught.value)


def test_make_provider_picks_the_adapter_named_in_the_settings(fake: FakeProviderServer) -> None:
    chosen = {name: make_provider(settings) for name, settings in {
        "meta": meta_settings(fake.url), "gateway": gateway_settings(fake.url),
        "fake": WhatsAppSettings(provider="fake")}.items()}
    assert isinstance(chosen["meta"], MetaCloudProvider)
    assert isinstance(chosen["gateway"], GatewayProvider)
    assert isinstance(chosen["fake"], FakeProvider)
    assert {name: provider.name for name, provider in chosen.items()} == {n: n for n in chosen}
    for provider in chosen.values():
        provider.close()
    with pytest.raises(ConfigError, match="WHATSAPP_PROVIDER"):
        make_provider(WhatsAppSettings(provider="carrier-pigeon"))


def test_the_in_process_fake_provider_always_succeeds_and_counts() -> None:
    provider = FakeProvider()
    ids = {provider.send(MESSAGE).provider_message_id for _ in range(3)}
    assert provider.sent_count == 3
    assert len(ids) == 3 and all(str(i).startswith("fake-") for i in ids)


def test_the_fake_rejects_a_malformed_cloud_request_with_code_100(fake: FakeProviderServer) -> None:
    url = f"{fake.url}/v21.0/123/messages"
    unauthenticated = requests.post(url, json={"messaging_product": "whatsapp", "to": "1", "text": {"body": "x"}},
                                    timeout=5)
    no_body = requests.post(url, json={"messaging_product": "whatsapp", "to": "1"}, timeout=5,
                            headers={"Authorization": "Bearer t"})
    assert [unauthenticated.status_code, no_body.status_code] == [400, 400]
    assert unauthenticated.json()["error"]["code"] == no_body.json()["error"]["code"] == 100
    assert [call["outcome"] for call in fake.calls()] == ["error", "error"]


def test_the_control_api_injects_failures_and_reports_calls_over_http(fake: FakeProviderServer) -> None:
    provider = MetaCloudProvider(meta_settings(fake.url))
    assert requests.post(f"{fake.url}/_fake/fail", json={"mode": "permanent", "count": 1}, timeout=5).ok
    with pytest.raises(PermanentError):
        provider.send(MESSAGE)
    assert provider.send(MESSAGE).provider_message_id
    calls = requests.get(f"{fake.url}/_fake/calls", timeout=5).json()
    assert [(c["seq"], c["outcome"]) for c in calls] == [(1, "error"), (2, "ok")]

    assert requests.post(f"{fake.url}/_fake/fail", json={"mode": "5xx", "rate": 1.0, "seed": 1}, timeout=5).ok
    with pytest.raises(TransientError):
        provider.send(MESSAGE)
    assert requests.post(f"{fake.url}/_fake/ok", timeout=5).ok
    assert provider.send(MESSAGE).provider_message_id
    provider.close()

    assert requests.delete(f"{fake.url}/_fake/calls", timeout=5).ok
    assert requests.get(f"{fake.url}/_fake/calls", timeout=5).json() == []
    bad = requests.post(f"{fake.url}/_fake/fail", json={"mode": "meteor", "count": 1}, timeout=5)
    assert bad.status_code == 400 and "meteor" in bad.json()["error"]


def test_a_seeded_failure_rate_repeats_the_same_pattern(fake: FakeProviderServer) -> None:
    def outcomes() -> list[str]:
        fake.reset()
        fake.set_failure_rate(0.5, "5xx", seed=42)
        provider = MetaCloudProvider(meta_settings(fake.url))
        for _ in range(12):
            try:
                provider.send(MESSAGE)
            except TransientError:
                pass
        provider.close()
        return [call["outcome"] for call in fake.calls()]

    first, second = outcomes(), outcomes()
    assert first == second
    assert "ok" in first and "error" in first


def test_wait_for_calls_returns_once_enough_calls_arrived_and_times_out_otherwise(fake: FakeProviderServer) -> None:
    sender = threading.Thread(target=lambda: send_with(MetaCloudProvider(meta_settings(fake.url))))
    sender.start()
    assert len(fake.wait_for_calls(1, timeout=5)) == 1
    sender.join()
    with pytest.raises(TimeoutError):
        fake.wait_for_calls(2, timeout=0.2)


def test_serve_prints_the_address_and_one_masked_line_per_message() -> None:
    out, stop = io.StringIO(), threading.Event()
    runner = threading.Thread(target=serve, kwargs={"port": 0, "out": out, "stop": stop})
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while "listening" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        url = re.search(r"listening on (http://\S+)", out.getvalue())
        assert url is not None
        send_with(MetaCloudProvider(meta_settings(url.group(1))))
    finally:
        stop.set()
        runner.join(timeout=5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and not runner.is_alive()
    assert "6281******07" in lines[1] and "628114040707" not in lines[1]
    assert MESSAGE.body[:20] in lines[1]


def test_the_command_line_fake_can_be_driven_from_another_process() -> None:
    process = subprocess.Popen([sys.executable, "-m", "wanotify.ops.fake_provider", "--port", "0"], stdout=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        url = re.search(r"listening on (http://\S+)", process.stdout.readline())
        assert url is not None
        requests.post(f"{url.group(1)}/_fake/fail", data=json.dumps({"mode": "quality", "count": 1}), timeout=5)
        with pytest.raises(QualityLimitError):
            send_with(MetaCloudProvider(meta_settings(url.group(1))))
        assert "error 400" in process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert exit_code == 0


def test_the_fake_server_sends_replies_without_waiting_for_delayed_acks():
    # Without TCP_NODELAY each reply's body waits for the client's delayed ACK (~40 ms a call),
    # which hides the sender's own costs in benchmarks and slows the demo.
    from wanotify.ops.fake_provider.handler import FakeHandler

    assert FakeHandler.disable_nagle_algorithm is True


# --- Template messages and the strict fake (the Cloud API's window and approved templates) ---

PAYMENT_CALL = TemplateCall("payment_link_v2", "id", [
    {"type": "body", "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "150.000"}]},
    {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "i/abc123"}]},
])
TEMPLATE_MESSAGE = replace(MESSAGE, template_call=PAYMENT_CALL)


@pytest.fixture
def strict() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(strict=True) as server:
        yield server


def test_a_message_with_a_template_call_goes_as_a_cloud_api_template(fake: FakeProviderServer) -> None:
    assert message_payload(TEMPLATE_MESSAGE) == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "628114040707", "type": "template",
        "template": {"name": "payment_link_v2", "language": {"code": "id"}, "components": PAYMENT_CALL.components}}
    provider = MetaCloudProvider(meta_settings(fake.url))
    result, template_result = provider.send(MESSAGE), provider.send(TEMPLATE_MESSAGE)
    provider.close()
    text_call, template_call = fake.calls()
    assert (text_call["kind"], text_call["template"], text_call["body"]) == ("text", None, MESSAGE.body)
    assert (template_call["kind"], template_call["template"], template_call["language"]) == (
        "template", "payment_link_v2", "id")
    assert template_call["params"] == {"body": ["Budi", "150.000"], "buttons": {"0": ["i/abc123"]}}
    assert result.provider_message_id and template_result.provider_message_id


def test_the_strict_fake_refuses_text_outside_the_window_with_131047(strict: FakeProviderServer) -> None:
    provider = MetaCloudProvider(meta_settings(strict.url))
    with pytest.raises(NeedsTemplate) as caught:
        provider.send(MESSAGE)
    strict.open_window("+62 811-4040-707")
    assert provider.send(MESSAGE).provider_message_id
    provider.close()
    assert caught.value.code == "meta_131047"
    assert [(c["kind"], c["status"], c["error_code"]) for c in strict.calls()] == [
        ("text", 400, 131047), ("text", 200, None)]


def test_the_strict_fake_takes_only_registered_templates_with_the_right_parameters(
        strict: FakeProviderServer) -> None:
    provider = MetaCloudProvider(meta_settings(strict.url))
    outcomes = []
    for register in (None, {"body_params": 3}, {"body_params": 2, "status": "PAUSED"},
                     {"body_params": 2, "status": "DISABLED"}, {"body_params": 2, "text": "Halo {{1}}, bayar {{2}}"}):
        if register is not None:
            strict.register_template("payment_link_v2", "id", **register)  # type: ignore[arg-type]
        try:
            outcomes.append(provider.send(TEMPLATE_MESSAGE).provider_message_id is not None)
        except TemplateRefused as exc:
            outcomes.append(exc.code)
    provider.close()
    assert outcomes == ["meta_132001", "meta_132000", "template_paused", "template_disabled", True]
    assert strict.calls()[-1]["body"] == "Halo Budi, bayar 150.000"  # what the member reads


def test_named_template_parameters_must_match_the_registered_names(strict: FakeProviderServer) -> None:
    named = replace(MESSAGE, template_call=TemplateCall("receipt", "en", [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "customer_name", "text": "Budi"}]}]))
    strict.register_template("receipt", "en", ["customer_name"], text="Thanks {{customer_name}}")
    assert MetaCloudProvider(meta_settings(strict.url)).send(named).provider_message_id
    strict.register_template("receipt", "en", ["first_name"])
    with pytest.raises(TemplateRefused, match="132000"):
        MetaCloudProvider(meta_settings(strict.url)).send(named)
    assert strict.calls()[0]["body"] == "Thanks Budi"


@pytest.mark.parametrize(("mode", "error_class", "code"), [
    ("needs_template", NeedsTemplate, "meta_131047"),
    ("opted_out", RecipientOptedOut, "opted_out"),
    ("template_params", TemplateRefused, "meta_132000"),
    ("template_missing", TemplateRefused, "meta_132001"),
    ("text_too_long", TemplateRefused, "meta_132005"),
    ("template_policy", TemplateRefused, "meta_132007"),
    ("param_format", TemplateRefused, "meta_132012"),
    ("template_paused", TemplateRefused, "template_paused"),
    ("template_disabled", TemplateRefused, "template_disabled"),
])
def test_each_injected_template_failure_raises_its_error(fake: FakeProviderServer, mode: str,
                                                         error_class: type[Exception], code: str) -> None:
    fake.fail_next(1, mode)
    with pytest.raises(error_class) as caught:
        MetaCloudProvider(meta_settings(fake.url)).send(TEMPLATE_MESSAGE)
    assert caught.value.code == code  # type: ignore[attr-defined]


def test_a_malformed_template_request_is_refused_with_code_100(fake: FakeProviderServer) -> None:
    url = f"{fake.url}/v21.0/123/messages"
    base = {"messaging_product": "whatsapp", "to": "1", "type": "template"}
    answers = [requests.post(url, json=base | extra, timeout=5, headers={"Authorization": "Bearer t"}) for extra in (
        {"template": {"language": {"code": "id"}}},
        {"template": {"name": "x"}},
        {"template": {"name": "x", "language": {"code": "id"}, "components": [{"type": "footer"}]}},
    )]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(400, 100)] * 3


def test_strict_mode_is_driven_through_the_control_api_from_another_process() -> None:
    process = subprocess.Popen([sys.executable, "-m", "wanotify.ops.fake_provider", "--port", "0", "--strict"],
                               stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"listening on (http://\S+)", line)
        assert url is not None and "strict" in line
        provider = MetaCloudProvider(meta_settings(url.group(1)))
        with pytest.raises(NeedsTemplate):
            provider.send(MESSAGE)
        assert requests.post(f"{url.group(1)}/_fake/window", json={"phone": "628114040707"}, timeout=5).ok
        assert requests.post(f"{url.group(1)}/_fake/templates", timeout=5, json={
            "name": "payment_link_v2", "language": "id", "body_params": 2}).ok
        assert provider.send(MESSAGE).provider_message_id and provider.send(TEMPLATE_MESSAGE).provider_message_id
        assert requests.post(f"{url.group(1)}/_fake/strict", json={"strict": False}, timeout=5).ok
        assert requests.delete(f"{url.group(1)}/_fake/templates", timeout=5).ok
        assert provider.send(TEMPLATE_MESSAGE).provider_message_id  # no longer strict: accepted
        provider.close()
        bad = requests.post(f"{url.group(1)}/_fake/templates", json={"language": "id"}, timeout=5)
        assert bad.status_code == 400 and "name" in bad.json()["error"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
