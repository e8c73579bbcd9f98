"""``wanotify run web``, the deprecated ``wanotify webhook`` and ``wanotify webhooks``, run as a user runs them."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.support.db import messages
from tests.support.processes import Proc, run_wanotify, wanotify_env
from tests.support.web import (
    SECRET,
    TOKEN,
    add_message,
    empty_webhook_tables,
    encode,
    receipt,
    sign,
)
from wanotify.shared.config import Settings

NO_PROVIDER = "http://127.0.0.1:1"


def env(settings: Settings, **extra: object) -> dict[str, str]:
    secrets: dict[str, object] = {"WHATSAPP_VERIFY_TOKEN": TOKEN, "WHATSAPP_APP_SECRET": SECRET}
    return wanotify_env(settings, NO_PROVIDER, **{**secrets, **extra})


def wanotify(settings: Settings, *args: str, **extra: object) -> subprocess.CompletedProcess[str]:
    return run_wanotify(args, env(settings, **extra))


@pytest.fixture
def metrics_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def web(settings: Settings, sessions, metrics_port: int) -> Iterator[tuple[Proc, str]]:  # type: ignore[no-untyped-def]
    empty_webhook_tables(sessions)
    proc = Proc(["run", "web", "--only", "webhook", "--port", "0"], env(settings, METRICS_PORT=metrics_port),
                ready="web: serving", name="web")
    yield proc, base_url(proc)
    proc.close()


def base_url(proc: Proc) -> str:
    match = re.search(r"on (http://127\.0\.0\.1:\d+)/", proc.log())
    assert match, proc.log()
    return match[1]


def test_run_web_serves_the_webhook_and_its_metrics_and_stops_cleanly_on_sigterm(web, metrics_port):
    proc, url = web
    params = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "c-1"}
    assert requests.get(f"{url}/webhooks/whatsapp", params=params, timeout=5).text == "c-1"
    assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok", "parts": ["webhook"]}
    assert requests.post(f"{url}/webhooks/whatsapp", data=b"{}", timeout=5).status_code == 401
    metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'wanotify_webhook_requests_total{status="401"} 1.0' in metrics
    assert proc.terminate() == 0
    assert TOKEN not in proc.log()  # the handshake's query string is not logged


@pytest.mark.parametrize("unset", ["WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET"])
def test_run_web_refuses_to_start_without_the_webhook_secrets(settings, unset):
    done = wanotify(settings, "run", "web", "--only", "webhook", **{unset: None})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "WHATSAPP_VERIFY_TOKEN" in line and "WHATSAPP_APP_SECRET" in line


def test_run_web_refuses_a_part_that_does_not_exist_and_lists_the_ones_that_do(settings):
    done = wanotify(settings, "run", "web", "--only", "webhook,nonsense")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "'nonsense'" in line and "available parts: webhook" in line


def test_run_web_on_a_port_in_use_is_a_configuration_error_in_one_line(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = wanotify(settings, "run", "web", "--only", "webhook", "--port", str(port))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "choose a free port (--port)" in done.stderr


def test_the_old_webhook_command_still_works_and_says_it_is_deprecated(settings, sessions):
    proc = Proc(["webhook", "--host", "127.0.0.1", "--port", "0"], env(settings), ready="web: serving", name="old")
    try:
        url = base_url(proc)
        assert "deprecated" in proc.log() and "run web --only webhook" in proc.log()
        params = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "7"}
        for path in ("/", "/webhooks/whatsapp"):  # the old server answered at /
            assert requests.get(url + path, params=params, timeout=5).text == "7"
    finally:
        proc.close()


def test_webhooks_list_and_replay_work_on_the_stored_payloads(settings, sessions, web):
    # Given a receipt that arrived before its message was recorded
    _, url = web
    body = encode(receipt("wamid.late", "read"))
    reply = requests.post(f"{url}/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": sign(body)}, timeout=5)
    assert reply.json()["receipts"] == {"unknown": 1}
    add_message(sessions, wamid="wamid.late")
    # When an operator lists the payloads and replays that one
    listed = json.loads(wanotify(settings, "webhooks", "list", "--json").stdout)
    assert [(p["outcome"], p["receipts"]) for p in listed] == [("applied", {"unknown": 1})]
    replayed = wanotify(settings, "webhooks", "replay", "--id", str(listed[0]["id"]), "--json")
    # Then the receipt is applied; replaying everything again changes nothing
    assert json.loads(replayed.stdout) == [{"id": listed[0]["id"], "receipts": {"moved": 1}}]
    assert messages(sessions)[0].status == "read"
    again = wanotify(settings, "webhooks", "replay", "--since", "1h")
    assert again.returncode == 0 and "duplicate=1" in again.stdout
    # and an id that names no payload fails, saying which, after replaying the ones that exist
    unknown = wanotify(settings, "webhooks", "replay", "--id", str(listed[0]["id"]), "--id", "99999999")
    assert unknown.returncode == 1 and "duplicate=1" in unknown.stdout
    assert "no stored payload with id 99999999" in unknown.stderr


def test_webhooks_replay_needs_to_be_told_what_to_replay(settings):
    done = wanotify(settings, "webhooks", "replay")
    assert done.returncode == 2 and "--since DURATION or --id N" in done.stderr
