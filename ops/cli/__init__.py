"""The ``wanotify`` command line (contract section 5)."""

from __future__ import annotations

from wanotify.ops.cli.app import main

__all__ = ["main"]
