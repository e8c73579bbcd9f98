"""Prometheus accepts our config and rules, the alerts fire on the data they are meant for,
and a real server scrapes what a running sender process counted.

Needs ``promtool`` and ``prometheus`` (Debian/Ubuntu: ``apt-get install prometheus``). Without
them the tests skip locally and fail in CI (env ``CI`` set), so CI cannot pass by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_YML = ROOT / "ops/prometheus/prometheus.yml"
ALERTS_YML = ROOT / "ops/prometheus/alerts.yml"
INSTALL_HINT = "install Prometheus (Debian/Ubuntu: `apt-get install prometheus`, which provides promtool too)"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"`{name}` not found on PATH: {INSTALL_HINT}")
        pytest.skip(f"`{name}` not found on PATH: {INSTALL_HINT}")
    return path


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_promtool_accepts_the_prometheus_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS_YML))
    assert result.returncode == 0, result.stdout + result.stderr


# Each case: input series (promtool notation), the time to evaluate at, and the alerts expected
# to be firing then (alert name -> label sets). An empty list asserts that nothing fires.
ALERT_CASES = """
  - interval: 1m
    input_series:
      - series: 'up{job="wanotify-sender", instance="sender:9102"}'
        values: '1 1 0 0 0 0'
      - series: 'wanotify_sender_paused{job="wanotify-sender", instance="sender:9102", sender="default", kind="quality"}'
        values: '0 1 1 1 1 1 1 1'
      - series: 'wanotify_send_backlog_drain_seconds{job="wanotify-notifier", instance="notifier:9101"}'
        values: '100+300x30'
      - series: 'rabbitmq_detailed_queue_messages{job="rabbitmq-queues", vhost="/", queue="wanotify.send.dead"}'
        values: '0 0 2 2 2 2 2 2 2 2'
      - series: 'rabbitmq_detailed_queue_messages{job="rabbitmq-queues", vhost="/", queue="wanotify.events.dead"}'
        values: '0x10'
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.notifier"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: WanotifyTargetDown
        exp_alerts:
          - exp_labels: {severity: critical, job: wanotify-sender, instance: "sender:9102"}
      - eval_time: 3m
        alertname: WanotifyTargetDown
        exp_alerts: []
      - eval_time: 7m
        alertname: WanotifySenderPaused
        exp_alerts:
          - exp_labels: {severity: critical, sender: default}
      - eval_time: 9m
        alertname: WanotifySendDeadLettersWaiting
        exp_alerts:
          - exp_labels: {severity: warning, vhost: /, queue: wanotify.send.dead}
      - eval_time: 9m
        alertname: WanotifyEventDeadLettersWaiting
        exp_alerts: []
      - eval_time: 9m
        alertname: WanotifyNotifierQueueWithoutConsumer
        exp_alerts: []
      - eval_time: 10m
        alertname: WanotifyBacklogDrainOverAnHour
        exp_alerts: []
      - eval_time: 30m
        alertname: WanotifyBacklogDrainOverAnHour
        exp_alerts:
          - exp_labels: {severity: warning}

  - interval: 1m
    input_series:
      # The first dead letter of a reason appears as a new series already at 1.
      - series: 'wanotify_messages_dead_total{job="wanotify-sender", reason="permanent"}'
        values: '_ _ _ 1 1 1 1'
      - series: 'wanotify_retries_total{job="wanotify-sender"}'
        values: '0+3x40'
      - series: 'wanotify_provider_call_duration_seconds_count{job="wanotify-sender", outcome="ok"}'
        values: '0+6x40'
      - series: 'wanotify_events_parked_total{job="wanotify-notifier", event_type="member.registered", reason="invalid_phone"}'
        values: '0+5x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: WanotifyMessagesGoingDead
        exp_alerts:
          - exp_labels: {severity: warning, reason: permanent}
      - eval_time: 35m
        alertname: WanotifyRetryRateHigh
        exp_alerts:
          - exp_labels: {severity: warning}
      - eval_time: 25m
        alertname: WanotifyNotifierParkingEvents
        exp_alerts:
          - exp_labels: {severity: warning, reason: invalid_phone}

  - interval: 1m
    input_series:
      # default sends a call a minute until minute 10, then none, with messages still ready
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.normal"}'
        values: '5x60'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="default", state="active"}'
        values: '1x60'
      - series: 'wanotify_sender_last_call_timestamp_seconds{job="wanotify-sender", sender="default"}'
        values: '0+60x10 600x50'
      - series: 'wanotify_provider_call_duration_seconds_count{job="wanotify-sender", outcome="ok"}'
        values: '0+6x10 60x50'
      - series: 'wanotify_retries_total{job="wanotify-sender"}'
        values: '0x60'
    alert_rule_test:
      - eval_time: 10m
        alertname: WanotifySenderStalled
        exp_alerts: []
      - eval_time: 45m
        alertname: WanotifySenderStalled
        exp_alerts:
          - exp_labels: {severity: critical, sender: default}
      - eval_time: 10m
        alertname: WanotifyRetryRateHigh
        exp_alerts: []

  - interval: 1m
    input_series:
      # A mapped template PAUSED from minute 3 until approved again at minute 10 (a series the process
      # no longer exports goes stale at once); another always approved.
      - series: 'wanotify_meta_template_status{job="wanotify-web", template="welcome_member", language="id", status="PAUSED"}'
        values: '_ _ _ 1 1 1 1 1 1 1 stale'
      - series: 'wanotify_meta_template_status{job="wanotify-web", template="welcome_member", language="id", status="APPROVED"}'
        values: '1 1 1 stale _ _ _ _ _ _ 1 1 1'
      - series: 'wanotify_meta_template_status{job="wanotify-web", template="payment_link", language="id", status="APPROVED"}'
        values: '1x12'
      # The number flagged from minute 2; its limit lowered from minute 20.
      - series: 'wanotify_meta_phone_numbers{job="wanotify-web", quality="GREEN"}'
        values: '1 1 0x30'
      - series: 'wanotify_meta_phone_numbers{job="wanotify-web", quality="FLAGGED"}'
        values: '_ _ 1x5 0x25'
      - series: 'wanotify_meta_messaging_limit_lowered{job="wanotify-web"}'
        values: '0x19 1x12'
    alert_rule_test:
      - eval_time: 2m
        alertname: WanotifyTemplatePaused
        exp_alerts: []
      - eval_time: 6m
        alertname: WanotifyTemplatePaused
        exp_alerts:
          - exp_labels: {severity: critical, template: welcome_member, language: id, status: PAUSED}
      - eval_time: 12m
        alertname: WanotifyTemplatePaused
        exp_alerts: []
      - eval_time: 1m
        alertname: WanotifyNumberQualityLow
        exp_alerts: []
      - eval_time: 7m
        alertname: WanotifyNumberQualityLow
        exp_alerts:
          - exp_labels: {severity: warning}
      - eval_time: 15m
        alertname: WanotifyNumberQualityLow
        exp_alerts: []
      - eval_time: 28m
        alertname: WanotifyNumberQualityLow
        exp_alerts:
          - exp_labels: {severity: warning}

  - interval: 1m
    input_series:
      # An admin paused "promo" (`wanotify senders pause promo`): a notice, not a page naming a quality limit.
      - series: 'wanotify_sender_paused{job="wanotify-sender", sender="promo", kind="by_hand"}'
        values: '1x10'
      - series: 'wanotify_sender_paused{job="wanotify-sender", sender="promo", kind="quality"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="promo", state="paused"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 9m
        alertname: WanotifySenderPaused
        exp_alerts: []
      - eval_time: 9m
        alertname: WanotifySenderNumberPaused
        exp_alerts:
          - exp_labels: {severity: warning, sender: promo}

"""


def test_the_alerts_fire_on_the_situations_they_describe(tmp_path: Path) -> None:
    # promtool compares annotations too; their templates are checked by `promtool check rules`,
    # so the cases run against a copy of the rules without them (same expr, for and labels).
    rules = yaml.safe_load(ALERTS_YML.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(f"rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:{ALERT_CASES}", encoding="utf-8")
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


def query(base: str, expr: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return payload["data"]["result"]


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus server on a free port scraping a free port where a wanotify process serves metrics.

    Yields (the server's base URL, the port the process must serve its metrics on).
    """
    exe = binary("prometheus")
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: wanotify-sender
            static_configs:
              - targets: ["127.0.0.1:{metrics_port}"]
        """), encoding="utf-8")
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web_port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{web_port}", metrics_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_a_real_prometheus_scrapes_the_messages_sent_by_the_sender(
        prometheus_server: tuple[str, int], tmp_path: Path, stack, publisher, fake_provider) -> None:  # type: ignore[no-untyped-def]
    # Given a real sender process serving its metrics where Prometheus scrapes
    base, metrics_port = prometheus_server
    stack.start("notifier")
    stack.start("sender", METRICS_PORT=metrics_port)

    # When one event goes through it to the provider
    publisher.publish("member.registered", {"member_id": "M-1", "name": "Budi", "phone": "08114040707"})
    fake_provider.wait_for_calls(1, timeout=15)

    # Then Prometheus reports the message the sender itself counted as sent
    deadline = time.monotonic() + 60
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = query(base, "sum(wanotify_messages_sent_total)")
        except (urllib.error.URLError, ConnectionError) as exc:  # server still starting
            last = exc
        else:
            last = result
            if result and float(result[0]["value"][1]) == 1:
                break
        time.sleep(0.5)
    else:
        log = (tmp_path / "prometheus.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"Prometheus never reported the sent message; last answer {last!r}\n{log}")

    [series] = query(base, "wanotify_messages_sent_total")
    labels = series["metric"]
    assert (labels["job"], labels["instance"], labels["priority"]) == (
        "wanotify-sender", f"127.0.0.1:{metrics_port}", "normal")
    assert float(series["value"][1]) == 1
