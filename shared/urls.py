"""The broker and database URLs: checked once at start-up, and never printed with a password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from wanotify.shared.errors import ConfigError

_QUERY_SECRET = re.compile(r"(?i)([?&;](?:password|passwd|pwd)=)[^&;#]*")
DATABASE_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"


def redact_url(url: str) -> str:
    """``url`` fit to print: every password replaced by ``***`` (also in a comma-separated list).

    ``amqp://guest:s3cret@host/`` becomes ``amqp://guest:***@host/``; a ``password=`` query
    parameter is masked too. Anything unparseable is masked generously rather than shown.
    """
    return ",".join(_redact_one(part) for part in url.split(","))


def _redact_one(url: str) -> str:
    head, at, rest = url.rpartition("@")  # the last @: a password may contain an unescaped one
    if at:
        scheme, sep, userinfo = head.partition("://") if "://" in head else ("", "", head)
        user, colon, _password = userinfo.partition(":")
        url = f"{scheme}{sep}{user}{':***' if colon else ''}@{rest}"
    return _QUERY_SECRET.sub(r"\1***", url)


def database_url(raw: str) -> str:
    """DATABASE_URL in SQLAlchemy's form: ``postgres://`` and ``postgresql://`` get the psycopg2 driver."""
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres", "postgresql+psycopg2") or not rest:
        raise ConfigError(f"DATABASE_URL must be a PostgreSQL URL such as {DATABASE_EXAMPLE}, got {redact_url(raw)!r}")
    url = f"postgresql+psycopg2://{rest}"
    from sqlalchemy.engine import make_url  # SQLAlchemy's own parser decides what it can use

    try:
        database = make_url(url).database
    except ValueError as exc:  # ArgumentError and a bad port are both ValueErrors
        raise ConfigError(f"DATABASE_URL cannot be parsed ({exc}): use {DATABASE_EXAMPLE}, "
                          f"got {redact_url(raw)!r}") from None
    if not database:
        raise ConfigError(f"DATABASE_URL names no database: end it with /DATABASE (e.g. /wanotify), "
                          f"got {redact_url(raw)!r}")
    return url


def amqp_url(raw: str) -> str:
    """AMQP_URL checked: one or several comma-separated ``amqp://`` / ``amqps://`` URLs (the
    nodes of one cluster: a process uses any one that is up)."""
    parts = raw.split(",")
    for number, part in enumerate(parts, 1):
        try:
            split = urlsplit(part.strip())
            usable = split.scheme.lower() in ("amqp", "amqps") and bool(split.hostname) and split.port != 0
        except ValueError:  # a port that is not a number
            usable = False
        if not usable:
            which = f" (URL {number} of {len(parts)} is {redact_url(part.strip())!r})" if len(parts) > 1 else ""
            raise ConfigError(f"AMQP_URL must be amqp://USER:PASSWORD@HOST:5672/VHOST (several may be given, "
                              f"comma-separated, one per cluster node), got {redact_url(raw)!r}{which}")
    return raw


def amqp_urls(raw: str) -> list[str]:
    """The URLs of a (checked) AMQP_URL, in the order given."""
    return [part.strip() for part in raw.split(",")]


def amqp_hosts(raw: str) -> str:
    """``host:port`` of each URL in AMQP_URL, for a log line (never a password)."""
    hosts = []
    for url in amqp_urls(raw):
        try:
            split = urlsplit(url)
            hosts.append(f"{split.hostname or 'localhost'}:{split.port or 5672}")
        except ValueError:
            hosts.append("(unparseable URL)")
    return ", ".join(hosts)
