"""Publishing events to wanotify from upstream Python apps.

    from wanotify.producers import EventPublisher
    with EventPublisher("amqp://guest:guest@localhost:5672/") as publisher:
        event_id = publisher.publish("member.registered", {"member_id": "M-1", "name": "Budi", "phone": "0811..."})
"""

from wanotify.producers.async_publisher import AsyncEventPublisher
from wanotify.producers.publisher import EventPublisher, PublishError

__all__ = ["AsyncEventPublisher", "EventPublisher", "PublishError"]
