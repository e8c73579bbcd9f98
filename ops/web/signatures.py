"""Meta's two proofs: the verify token of the subscription handshake, the payload signature.

Both are compared in constant time, as bytes: a header may carry any byte (Starlette hands
it over latin-1 decoded), and ``hmac.compare_digest`` refuses non-ASCII ``str``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "x-hub-signature-256"
_FORM = re.compile(rb"sha256=[0-9a-f]{64}")


def well_formed(header: str) -> bool:
    """Whether a signature header has the form ``sha256=<64 lowercase hex digits>``."""
    return _FORM.fullmatch(_raw(header).strip()) is not None


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the HMAC-SHA256 of the raw ``body`` (as received) under ``secret``."""
    expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, _raw(header).strip())


def token_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def _raw(header: str) -> bytes:
    return header.encode("latin-1", "replace")
