"""The per-sender alerts fire for the sender concerned, and only for it; the stalled-sender alert
sees messages waiting on any sender's priority queues; the send-queue consumer alert watches the
queues of active senders only (promtool test rules). The dashboard counts the send queues' consumers."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.integration.test_prometheus import ALERTS_YML, promtool
from tests.unit.test_ops_files import DASHBOARD_JSON, dashboard_panels

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
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="otp", state="active"}'
        values: '1x40'
      - series: 'wanotify_provider_call_duration_seconds_count{job="wanotify-sender", outcome="ok"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: WanotifySenderStalled
        exp_alerts:
          - exp_labels: {severity: critical, sender: otp}

  - interval: 1m
    input_series:
      # A pool: otp is active with messages ready and makes no call; promo is paused by Meta, which
      # must not silence otp; sales calls every minute; default is disabled; gone is no sender now.
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.otp.high"}'
        values: '5x40'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="otp", state="active"}'
        values: '1x40'
      - series: 'wanotify_sender_last_call_timestamp_seconds{job="wanotify-sender", sender="otp"}'
        values: '60x40'
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.promo.low"}'
        values: '5x40'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="promo", state="paused"}'
        values: '1x40'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="promo", state="active"}'
        values: '0x40'
      - series: 'wanotify_sender_paused{job="wanotify-sender", sender="promo", kind="quality"}'
        values: '1x40'
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.sales.normal"}'
        values: '5x40'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="sales", state="active"}'
        values: '1x40'
      - series: 'wanotify_sender_last_call_timestamp_seconds{job="wanotify-sender", sender="sales"}'
        values: '0+60x40'
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.normal"}'
        values: '5x40'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="default", state="disabled"}'
        values: '1x40'
      - series: 'rabbitmq_detailed_queue_messages_ready{job="rabbitmq-queues", vhost="/", queue="wanotify.send.gone.low"}'
        values: '5x40'
      - series: 'wanotify_provider_call_duration_seconds_count{job="wanotify-sender", outcome="ok"}'
        values: '0+1x40'
    alert_rule_test:
      - eval_time: 20m
        alertname: WanotifySenderStalled
        exp_alerts: []
      # otp's last call (minute 1) is 15 minutes old from minute 16; 15 minutes later it fires
      - eval_time: 38m
        alertname: WanotifySenderStalled
        exp_alerts:
          - exp_labels: {severity: critical, sender: otp}

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

  - interval: 1m
    input_series:
      # default (fresh install) is active and consumed; so is its synthetic row of the old name
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.high"}'
        values: '1x10'
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.low"}'
        values: '1x10'
      - series: 'wanotify_queue_consumers{job="wanotify-sender", queue="wanotify.send"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="default", state="active"}'
        values: '1x10'
      # the legacy single send queue an upgrade leaves in place has no consumer, by design
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send"}'
        values: '0x10'
      # delay and dead queues are never consumed
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.dead"}'
        values: '0x10'
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.retry.300000ms"}'
        values: '0x10'
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.defer.250ms"}'
        values: '0x10'
      # otp is active (two processes say so) and nobody consumes it from minute 2
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.otp.low"}'
        values: '1 1 0 0 0 0 0 0 0 0'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="otp", state="active"}'
        values: '1x10'
      - series: 'wanotify_sender_state{job="wanotify-notifier", sender="otp", state="active"}'
        values: '1x10'
      # promo paused, old disabled: their lanes rightly stop consuming
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.promo.normal"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="promo", state="active"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="promo", state="paused"}'
        values: '1x10'
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.old.high"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="old", state="active"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="old", state="disabled"}'
        values: '1x10'
      # queues of a sender no longer configured
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.gone.low"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 9m
        alertname: WanotifySendQueueWithoutConsumer
        exp_alerts:
          - exp_labels: {severity: critical, queue: wanotify.send.otp.low, sender: otp}

  - interval: 1m
    input_series:
      # default disabled (every message goes to named senders): its queues go unconsumed
      - series: 'rabbitmq_detailed_queue_consumers{job="rabbitmq-queues", vhost="/", queue="wanotify.send.normal"}'
        values: '0x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="default", state="disabled"}'
        values: '1x10'
      - series: 'wanotify_sender_state{job="wanotify-sender", sender="default", state="active"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 9m
        alertname: WanotifySendQueueWithoutConsumer
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


def test_the_dashboard_counts_the_consumers_of_every_senders_priority_queues(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    [expr] = [target["expr"] for panel in dashboard_panels(dashboard) if panel["title"] == "Send queue consumers"
              for target in panel["targets"]]
    # Given default's three queues and one of otp's consumed, and the legacy queue and a retry queue not
    series = [("wanotify.send.high", 1), ("wanotify.send.normal", 1), ("wanotify.send.low", 1),
              ("wanotify.send.otp.high", 1), ("wanotify.send", 0), ("wanotify.send.retry.300000ms", 0)]
    inputs = "".join(f"""
      - series: 'rabbitmq_detailed_queue_consumers{{job="rabbitmq-queues", vhost="/", queue="{queue}"}}'
        values: '{value}x5'""" for queue, value in series)
    case = f"""
  - interval: 1m
    input_series:{inputs}
    promql_expr_test:
      - expr: {json.dumps(expr)}
        eval_time: 3m
        exp_samples:
          - labels: '{{}}'
            value: 4
"""
    (tmp_path / "rules.yml").write_text("groups: []\n", encoding="utf-8")
    tests = tmp_path / "dashboard_test.yml"
    tests.write_text(f"rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:{case}", encoding="utf-8")
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
