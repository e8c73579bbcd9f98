"""Console accounts: add, list, remove, change a password, check a login.

Passwords are stored as argon2id hashes (argon2-cffi's defaults). A login for an unknown
name still spends one hash verification, so the answer's timing does not tell which names
exist.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from enum import IntEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wanotify.shared.db.models import ConsoleUser
from wanotify.shared.errors import WanotifyError

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # hashing a huge password is a cheap way to burn the server's CPU

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names (so they take as long as known ones); made on
    first use, not at import, where it would slow down every command."""
    return _hasher.hash("not a real password, only spent on unknown names")


class Role(IntEnum):
    """What an account may do; each role may do everything the ones below it may."""

    VIEWER = 1  # read every page
    OPERATOR = 2  # actions: replay, purge, retry, pause, send test, clear queue
    ADMIN = 3  # templates, settings, senders, users

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise UserError(f"unknown role {name!r}: use viewer, operator or admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class UserError(WanotifyError):
    """A request about accounts that cannot be done as asked (one line for the user)."""


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD} characters")


def add_user(session: Session, username: str, role: Role, password: str) -> ConsoleUser:
    if not USERNAME.match(username):
        raise UserError(f"invalid user name {username!r}: 1-64 letters, digits, '_', '.', '@' or '-'")
    check_password(password)
    if _find(session, username) is not None:
        raise UserError(f"user {username!r} exists already: use `wanotify users set-password` or remove it first")
    user = ConsoleUser(username=username, role=role.label, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[dict[str, Any]]:
    users = session.scalars(select(ConsoleUser).order_by(ConsoleUser.username))
    return [{"username": u.username, "role": u.role, "created_at": u.created_at, "last_login_at": u.last_login_at}
            for u in users]


def remove_user(session: Session, username: str) -> None:
    user = _require(session, username)
    session.delete(user)


def set_password(session: Session, username: str, password: str) -> None:
    """A new password; the user's open console sessions end (they carry the old hash's fingerprint)."""
    check_password(password)
    _require(session, username).password_hash = _hasher.hash(password)


def set_role(session: Session, username: str, role: Role) -> None:
    _require(session, username).role = role.label


def authenticate(session: Session, username: str, password: str) -> ConsoleUser | None:
    """The user if the password is right (and its login time recorded), else None."""
    user = _find(session, username) if len(password) <= MAX_PASSWORD else None
    if not _verify(user.password_hash if user else _dummy_hash(), password[:MAX_PASSWORD]) or user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = session.scalar(select(func.now())) or datetime.now()
    return user


def get_user(session: Session, user_id: int) -> ConsoleUser | None:
    return session.get(ConsoleUser, user_id)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _find(session: Session, username: str) -> ConsoleUser | None:
    return session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))


def _require(session: Session, username: str) -> ConsoleUser:
    user = _find(session, username)
    if user is None:
        raise UserError(f"no user {username!r}: `wanotify users list` shows them")
    return user
