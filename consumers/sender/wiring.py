"""The one place a sender process is put together: its providers, its budget, its leases.

``wanotify run sender`` (the runner), the demo and the tests all build their sender here, so
they run the same thing.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker

from wanotify.consumers.providers import Provider, make_provider
from wanotify.consumers.sender.gate import BudgetGate
from wanotify.consumers.sender.service import ProviderFor, Sender
from wanotify.shared.config import Settings
from wanotify.shared.metrics import Metrics
from wanotify.shared.senders import SenderConfig


def providers_for(settings: Settings, given: Provider | None = None) -> ProviderFor:
    """Each sender's provider, from its own settings (``SenderConfig.whatsapp``); the
    environment's number uses ``given`` when the caller made one (and keeps owning it)."""

    def build(config: SenderConfig) -> tuple[Provider, bool]:
        if given is not None and config.from_environment:
            return given, False
        return make_provider(config.whatsapp(settings.whatsapp)), True

    return build


def build_sender(settings: Settings, metrics: Metrics, sessions: sessionmaker[Session],
                 provider: Provider | None = None) -> Sender:
    """A sender process serving every active sender, with the budget (recipient interval, pair
    rate, daily limits) in its claims."""
    return Sender(settings, metrics, sessions, provider_for=providers_for(settings, provider), gate=BudgetGate(settings))


async def run_sender(settings: Settings, metrics: Metrics, sessions: sessionmaker[Session], stop: asyncio.Event,
                     provider: Provider | None = None) -> None:
    """Run a sender process until ``stop`` is set."""
    await build_sender(settings, metrics, sessions, provider).run(stop)
