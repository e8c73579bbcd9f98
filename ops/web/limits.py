"""Request limits the app enforces itself, whoever serves it: body size, body time, memory.

The size limit is counted while reading, never taken from Content-Length (a client may lie,
or send chunks with no length at all). The body has a deadline, so a client that trickles
bytes is cut off. And all bodies being read at once share one memory budget, so many large
requests together cannot grow the process without bound: one that does not fit gets 503,
which Meta retries later. Limits on connections and on slow headers belong to the server
(``wanotify.ops.web.server``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request

from wanotify.shared.config import Settings

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 3 * MiB  # Meta's payloads are up to 3 MB
    body_timeout_seconds: float = 10.0  # the whole body, from the end of the headers
    header_timeout_seconds: float = 10.0  # the request line and headers, from the connection (or last response)
    max_header_bytes: int = 16 * 1024
    max_concurrency: int = 100  # open connections; past it uvicorn answers 503 at once
    body_budget_bytes: int = 32 * MiB  # every body being read or handled, together

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(max_body_bytes=settings.webhook_max_body_bytes)


class Refused(Exception):
    """A request the app will not handle, with the status and one line that say why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BodyBudget:
    """Bytes of request bodies held at once, across requests (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @contextmanager
    def lease(self) -> Iterator[Lease]:
        lease = Lease(self)
        try:
            yield lease
        finally:
            self.used -= lease.held


class Lease:
    """One request's share of the budget, returned when the request is done."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, n: int) -> None:
        if self.budget.used + n > self.budget.limit:
            raise Refused(503, "too many large requests at once; try again later")
        self.budget.used += n
        self.held += n


def declared_length(headers: Headers, limits: Limits) -> int | None:
    """Content-Length if it is sane; None for a chunked body. Refuses what cannot be read safely."""
    raw = headers.get("content-length")
    if raw is None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return None
        raise Refused(411, "Content-Length required")
    if not (raw.isascii() and raw.isdigit()):
        raise Refused(400, "Content-Length must be a non-negative whole number")
    if len(raw) > 12 or int(raw) > limits.max_body_bytes:
        raise Refused(413, f"body larger than {limits.max_body_bytes} bytes")
    return int(raw)


async def read_body(request: Request, limits: Limits, lease: Lease) -> bytes:
    """The whole body, counted as it arrives, within the size limit, the deadline and the budget."""
    declared_length(request.headers, limits)
    body = bytearray()
    try:
        async with asyncio.timeout(limits.body_timeout_seconds):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limits.max_body_bytes:
                    raise Refused(413, f"body larger than {limits.max_body_bytes} bytes")
                lease.take(len(chunk))
                body += chunk
    except TimeoutError:
        raise Refused(408, f"body not received within {limits.body_timeout_seconds:g} s") from None
    except ClientDisconnect:
        raise Refused(400, "the client went away before sending the whole body") from None
    return bytes(body)
