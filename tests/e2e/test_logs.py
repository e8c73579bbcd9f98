"""Logs: one JSON object per line on request, ids on every message line, no secrets or numbers."""

from __future__ import annotations

import json

from tests.e2e.scenario import member
from tests.support.db import messages
from tests.support.processes import wait_until


def test_json_logs_carry_ids_and_mask_phone_numbers_and_never_print_secrets(stack, publisher, fake_provider, sessions):
    stack.start("notifier", LOG_FORMAT="json")
    sender = stack.start("sender", LOG_FORMAT="json")
    event_id = publisher.publish("member.registered", member(1))
    publisher.publish("member.registered", member(2) | {"phone": "08"})
    wait_until(lambda: [m for m in messages(sessions) if m.status == "sent"], 15, "the message to be sent")
    wait_until(lambda: '"msg": "sent ' in sender.log(), 5, "the sent line")
    lines = [json.loads(line) for proc in stack.procs for line in proc.log().splitlines() if line.startswith("{")]
    sent = [line for line in lines if line["msg"].startswith("sent ")]
    assert len(sent) == 1 and sent[0]["event_id"] == event_id and sent[0]["message_id"] == f"{sent[0]['log_id']}.1"
    assert sent[0]["provider_message_id"].startswith("wamid.")
    parked = [line for line in lines if line["msg"].startswith("parked event")]
    assert len(parked) == 1 and parked[0]["reason"] == "invalid_phone"
    everything = "\n".join(proc.log() for proc in stack.procs)
    assert "test-token" not in everything
    assert "8114040001" not in everything  # the recipient appears masked only
