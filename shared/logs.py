"""Logging: readable lines by default, one JSON object per line with LOG_FORMAT=json.

Log calls never include a full phone number (``mask_phone``) or a secret.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(json_lines: bool = False, level: int = logging.INFO, *, one_shot: bool = False) -> None:
    """Log to stderr at ``level``. ``one_shot`` commands report a failed connection themselves, in
    one line, so the client libraries' own error logs about it are left out (unless debugging)."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aio_pika", "aiormq", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pika logs each failed connection attempt (with a traceback) and each 404 of a passive
    # queue declaration; every caller reports those failures itself, in one line.
    logging.getLogger("pika").setLevel(logging.WARNING if level <= logging.DEBUG else logging.CRITICAL)
    if one_shot and level > logging.DEBUG:
        logging.getLogger("aiormq").setLevel(logging.CRITICAL)
