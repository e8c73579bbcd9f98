"""WhatsApp provider adapters behind one small interface (``Provider.send``)."""

from __future__ import annotations

from collections.abc import Callable

from wanotify.consumers.providers.base import OutgoingMessage, Provider, SendResult
from wanotify.consumers.providers.fake import FakeProvider
from wanotify.consumers.providers.gateway import GatewayProvider, GatewayShape
from wanotify.consumers.providers.meta import MetaCloudProvider
from wanotify.shared.config import PROVIDER_MISSING, WhatsAppSettings
from wanotify.shared.errors import ConfigError

__all__ = [
    "FakeProvider",
    "GatewayProvider",
    "GatewayShape",
    "MetaCloudProvider",
    "OutgoingMessage",
    "Provider",
    "SendResult",
    "make_provider",
]

_PROVIDERS: dict[str, Callable[[WhatsAppSettings], Provider]] = {
    "meta": MetaCloudProvider,
    "gateway": GatewayProvider,
    "fake": FakeProvider,
}


def make_provider(settings: WhatsAppSettings) -> Provider:
    """The adapter named by ``settings.provider``; raises ConfigError for an unknown name or missing credentials."""
    if settings.provider is None:
        raise ConfigError(PROVIDER_MISSING)
    factory = _PROVIDERS.get(settings.provider)
    if factory is None:
        raise ConfigError(f"WHATSAPP_PROVIDER must be one of {', '.join(_PROVIDERS)}, got {settings.provider!r}")
    return factory(settings)

