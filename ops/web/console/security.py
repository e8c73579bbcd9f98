"""The console's protections: a signed session cookie, CSRF tokens, security headers.

- **Session**: a cookie holding a small JSON object signed (HMAC, itsdangerous) with
  ``WEB_SECRET_KEY``: the user's id, a fingerprint of their password hash (a new password
  ends every open session), when they logged in, and the CSRF token. It is HttpOnly and
  SameSite=Strict, and Secure when the request came over https — the request's own scheme,
  which uvicorn takes from ``X-Forwarded-Proto`` only when the proxy is trusted
  (``FORWARDED_ALLOW_IPS``, default 127.0.0.1). A session ends after ``IDLE_SECONDS``
  without a request and ``MAX_AGE_SECONDS`` after the login, whichever comes first.
- **CSRF**: every session carries a random token; every state-changing request (any method
  but GET/HEAD/OPTIONS) must echo it in the form field ``csrf_token`` or the header
  ``X-CSRF-Token``, else 403. The token sits inside the signed cookie, so it cannot be
  forged, and SameSite=Strict keeps the cookie off cross-site requests anyway.
- **Headers**: a Content-Security-Policy allowing only this origin's own files (no inline
  script or style, no frames), and the usual nosniff, frame and referrer headers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "wanotify_console"
IDLE_SECONDS = 30 * 60
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "font-src 'self'",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Adds the security headers to every response of the wrapped app (pages, fragments, files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A header the response set itself (the API's nosniff) is not sent twice.
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in HEADERS if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SessionCookie:
    """Reads and writes the signed session cookie."""

    def __init__(self, secret_key: str) -> None:
        self.serializer = URLSafeTimedSerializer(secret_key, salt="wanotify-console-session")

    def load(self, request: Request) -> dict[str, Any]:
        """The session's data, or a new anonymous session (with a CSRF token) when there is none valid."""
        raw = request.cookies.get(COOKIE)
        data = self._unsign(raw) if raw else None
        if data is None or ("uid" in data and time.time() - float(data.get("login_at", 0)) > MAX_AGE_SECONDS):
            return new_session()
        return data

    def _unsign(self, raw: str) -> dict[str, Any] | None:
        try:
            data = self.serializer.loads(raw, max_age=IDLE_SECONDS)  # also refuses an expired signature
        except (BadSignature, ValueError, TypeError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("csrf"), str) else None

    def save(self, response: Response, request: Request, data: dict[str, Any]) -> None:
        value = self.serializer.dumps(data)
        response.set_cookie(COOKIE, value, max_age=IDLE_SECONDS, path="/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")


def new_session(**values: Any) -> dict[str, Any]:
    """A fresh session: a new CSRF token, so a token seen before the login is useless after it."""
    return {"csrf": secrets.token_urlsafe(32), **values}


def password_fingerprint(password_hash: str) -> str:
    """Enough of the password hash to notice it changed; the cookie never carries the hash itself."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def csrf_ok(session: dict[str, Any], submitted: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))
