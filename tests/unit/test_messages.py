"""The send-queue wire format."""

from __future__ import annotations

import pytest

from wanotify.shared.errors import PermanentError
from wanotify.shared.messages import SendCommand
from wanotify.shared.priority import Priority


def test_a_command_survives_encoding_and_its_next_attempt_keeps_the_retry_budget():
    command = SendCommand(42, 3, Priority.HIGH, "6f1c2d3e-8a9b-4c5d-9e0f-112233445566", "payment_link", first_attempt=3)
    assert SendCommand.decode(command.encode()) == command
    following = command.next_attempt()
    assert (following.attempt, following.first_attempt, following.retries_used) == (4, 3, 1)
    assert command.message_id == "42.3"


@pytest.mark.parametrize("body", [b"", b"[]", b'{"log_id": "x"}', b'{"log_id": 1, "attempt": 1, "priority": "urgent",'
                                  b' "event_id": "e", "template": "t"}'])
def test_a_body_that_is_not_a_command_is_a_permanent_error(body):
    with pytest.raises(PermanentError, match="not a send command"):
        SendCommand.decode(body)
