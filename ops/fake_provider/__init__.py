"""A local fake WhatsApp provider (Cloud API + MPWA gateway) for the demo, tests and benchmarks.

In-process::

    with FakeProviderServer() as fake:
        fake.fail_next(2, "5xx")
        ...  # point WHATSAPP_API_BASE_URL at fake.url
        fake.wait_for_calls(3)

From another process: ``python -m wanotify.ops.fake_provider --port 0`` (or ``wanotify fake-provider``)
and the ``/_fake/...`` control API.
"""

from __future__ import annotations

from wanotify.ops.fake_provider.cli import DEFAULT_PORT, main, mask_number, serve
from wanotify.ops.fake_provider.server import FakeProviderServer
from wanotify.ops.fake_provider.state import FAILURE_MODES

__all__ = ["DEFAULT_PORT", "FAILURE_MODES", "FakeProviderServer", "main", "mask_number", "serve"]
