"""``python -m wanotify.ops.fake_provider``: the same as ``wanotify fake-provider``."""

from __future__ import annotations

import sys

from wanotify.ops.fake_provider.cli import main

sys.exit(main())
