"""``Authorization: Bearer <key>``: which API key a request carries, or 401.

A key found (or not found) in the database is remembered for ``cache_seconds``, so a busy
client costs no query per request; a revoked key therefore stops working within that time.
Each lookup also records the key's ``last_used_at``, so that date is as fresh as the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from wanotify.ops.admin.api_keys import KeyOwner, hash_key, mark_used, owner_of
from wanotify.ops.web.api.errors import unauthorized
from wanotify.shared.db.engine import transaction

CACHE_SECONDS = 5.0
MAX_CACHED = 10_000


class Authenticator:
    def __init__(self, sessions: sessionmaker[Session], cache_seconds: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[KeyOwner | None, float]] = {}  # sha256 of the key -> (owner, until)

    async def owner(self, authorization: str | None) -> KeyOwner:
        """The key's owner; raises a 401 ``ApiError`` for a missing, malformed, unknown or revoked key."""
        key = bearer_key(authorization)
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > self.clock():
            found = cached[0]
        else:
            found = await asyncio.to_thread(self._look_up, key)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (found, self.clock() + self.cache_seconds)
        if found is None:
            raise unauthorized("the API key is unknown or revoked: create one with `wanotify api-keys create NAME`")
        return found

    def _look_up(self, key: str) -> KeyOwner | None:
        with transaction(self.sessions) as session:
            found = owner_of(session, key)
            if found is not None:
                mark_used(session, [found.id])
            return found


def bearer_key(authorization: str | None) -> str:
    if not authorization:
        raise unauthorized("no API key: send `Authorization: Bearer <key>`")
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("the Authorization header must be `Bearer <key>`")
    return key.strip()
