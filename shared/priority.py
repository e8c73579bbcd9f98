"""The three priority levels and their AMQP priority numbers."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def amqp(self) -> int:
        return AMQP_PRIORITY[self]


# A few levels are cheaper for RabbitMQ than many; messages without a priority count as 0.
AMQP_PRIORITY = {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 3}
MAX_PRIORITY = max(AMQP_PRIORITY.values())
