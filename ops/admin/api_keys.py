"""HTTP API keys: create (the key is shown once), list, revoke, and find the key a request carries.

A key is ``wnk_`` followed by 43 URL-safe characters (32 random bytes), so it is easy to
spot in a leaked file and impossible to guess. Only its SHA-256 is stored, with its first
characters (``prefix``) to tell keys apart in a listing. Looking a key up by its hash is
safe against timing: an attacker who does not know a key cannot choose the bytes of its
hash, so how far a comparison gets tells them nothing about any stored key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wanotify.shared.db.models import ApiKey
from wanotify.shared.errors import WanotifyError

KEY_PREFIX = "wnk_"
SHOWN_CHARS = 12  # "wnk_" and 8 characters of the secret part: enough to tell keys apart, useless to guess
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_KEY_CHARS = 200  # anything longer is not one of ours; no need to hash it


class ApiKeyError(WanotifyError):
    """A request about API keys that cannot be done as asked (one line for the user)."""


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key belongs to, as the API sees it."""

    id: int
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(session: Session, name: str) -> str:
    """Stores a new key named ``name`` (its hash) and returns the key itself: the only time it is seen."""
    if not NAME.match(name):
        raise ApiKeyError(f"invalid key name {name!r}: 1-64 letters, digits, '_', '.' or '-'")
    existing = _find(session, name)
    if existing is not None:
        state = "revoked" if existing.revoked_at else "in use"
        raise ApiKeyError(f"an API key named {name!r} exists already ({state}): choose another name")
    key = new_key()
    session.add(ApiKey(name=name, prefix=key[:SHOWN_CHARS], key_hash=hash_key(key)))
    session.flush()
    return key


def list_keys(session: Session) -> list[dict[str, Any]]:
    """Every key by name, with its prefix and dates; never the key or its hash."""
    keys = session.scalars(select(ApiKey).order_by(ApiKey.name))
    return [{"name": k.name, "prefix": k.prefix, "state": "revoked" if k.revoked_at else "active",
             "created_at": k.created_at, "last_used_at": k.last_used_at, "revoked_at": k.revoked_at} for k in keys]


def revoke_key(session: Session, name: str) -> None:
    """Revokes the key ``name``; a request with it is refused (401) from then on."""
    key = _find(session, name)
    if key is None:
        raise ApiKeyError(f"no API key named {name!r}: `wanotify api-keys list` shows them")
    if key.revoked_at is not None:
        raise ApiKeyError(f"the API key {name!r} was revoked already, at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
    key.revoked_at = session.scalar(select(func.now())) or datetime.now()


def owner_of(session: Session, key: str) -> KeyOwner | None:
    """The owner of ``key`` if it is a stored key that is not revoked, else None."""
    if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_CHARS:
        return None
    digest = hash_key(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return KeyOwner(row.id, row.name)


def mark_used(session: Session, key_ids: list[int]) -> None:
    """Records that these keys were used now (the API calls it at most once a minute per key)."""
    if key_ids:
        session.execute(update(ApiKey).where(ApiKey.id.in_(key_ids)).values(last_used_at=func.now()))


def _find(session: Session, name: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.name == name))
