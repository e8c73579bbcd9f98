"""Status events out (contract section 9): the relay from ``status_outbox`` to ``{ns}.status``."""

from wanotify.consumers.status.relay import RelayOptions, StatusRelay, relay_status_forever

__all__ = ["RelayOptions", "StatusRelay", "relay_status_forever"]
