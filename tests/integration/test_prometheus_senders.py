"""The per-sender alerts fire for the sender concerned, and only for it; the stalled-sender alert
sees messages waiting on any sender's priority queues (promtool test rules)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.integration.test_prometheus import ALERTS_YML, promtool

# Two processes export the same per-sender gauges (every process reads the database): the rules
# take the max per sender, so neither duplicates an alert nor hides one.
SENDER_CASES = """
  - interval: 1m
    input_series:
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="otp", state="paused"}'
        values: '0 0 1 1 1 1 1 1 1 1'
      - series: 'wanotify_sender_state{job="wanotify-notifier", sender="otp", state="paused"}'
        values: '0 0 1 1 1 1 1 1 1 1'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="promo", state="paused"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="old", state="disabled"}'
        values: '1x30'
      - series: 'wanotify_sender_daily_limit_reached{job="wanotify-sender", sender="promo"}'
        values: '0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
      - series: 'wanotify_sender_daily_limit_reached{job="wanotify-sender", sender="otp"}'
        values: '0x20'
      - series: 'wanotify_sender_consumer_attached{job="wanotify-sender", sender="otp"}'
        values: '1x10'
      - series: 'wanotify_sender_consumer_attached{job="wanotify-sender", sender="promo"}'
        values: '1 1 0 0 0 0 0 0 0 0'
      - series: 'wanotify_sender_consumer_attached{job="wanotify-sender", sender="old"}'
        values: '0x10'
      # paused for long: its lane stops consuming, which is no fault
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="held", state="paused"}'
        values: '1x30'
      - series: 'wanotify_sender_consumer_attached{job="wanotify-sender", sender="held"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 4m
        alertname: WanotifySenderNumberPaused
        exp_alerts: []
      - eval_time: 8m
        alertname: WanotifySenderNumberPaused
        exp_alerts:
          - exp_labels: {severity: warning, sender: otp}
          - exp_labels: {severity: warning, sender: held}
      - eval_time: 10m
        alertname: WanotifySenderAtDailyLimit
        exp_alerts: []
      - eval_time: 17m
        alertname: WanotifySenderAtDailyLimit
        exp_alerts:
          - exp_labels: {severity: warning, sender: promo}
      - eval_time: 9m
        alertname: WanotifySenderWithoutConsumer
        exp_alerts:
          - exp_labels: {severity: critical, sender: promo}

  - interval: 1m
    input_series:
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.otp.low"}'
        values: '5x40'
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.dead"}'
        values: '0x40'
      - series: 'wanotify_provider_call_duration_seconds_count{job="wanotify-sender", outcome="ok"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: WanotifySenderStalled
        exp_alerts:
          - exp_labels: {severity: critical}

  - interval: 1m
    input_series:
      # dead letters are not messages waiting to be sent
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.dead"}'
        values: '5x40'
      - series: 'wanotify_provider_call_duration_seconds_count{job="wanotify-sender", outcome="ok"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: WanotifySenderStalled
        exp_alerts: []
"""


def test_the_per_sender_alerts_name_the_sender_and_skip_a_disabled_one(tmp_path: Path) -> None:
    rules = yaml.safe_load(ALERTS_YML.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # their templates are checked by `promtool check rules`
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests = tmp_path / "senders_test.yml"
    tests.write_text(f"rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:{SENDER_CASES}", encoding="utf-8")
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
