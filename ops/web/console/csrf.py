"""The CSRF check, before routing, for every state-changing request the console receives.

It reads the body (at most ``MAX_FORM_BYTES``, URL-encoded), compares its ``csrf_token``
field — or the ``X-CSRF-Token`` header — with the token in the signed session cookie, and
refuses with 403 when they differ. Checked before routing, so no route can forget it. The
parsed form is handed on in the scope and the body replayed to the app unchanged.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wanotify.ops.web.console.runtime import FORM_SCOPE_KEY
from wanotify.ops.web.console.security import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, SessionCookie, csrf_ok

MAX_FORM_BYTES = 1024 * 1024
BODY_TIMEOUT_SECONDS = 10.0  # a client trickling its form is cut off


class CsrfGuard:
    def __init__(self, app: ASGIApp, cookie: SessionCookie) -> None:
        self.app = app
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
                body = await _read(receive)
        except TimeoutError:
            await PlainTextResponse("form not received in time\n", 408)(scope, receive, send)
            return
        if body is None:
            await PlainTextResponse("form too large\n", 413)(scope, receive, send)
            return
        fields: list[tuple[str, str | UploadFile]] = list(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        form = FormData(fields)
        request = Request(scope)
        submitted = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not csrf_ok(self.cookie.load(request), submitted if isinstance(submitted, str) else None):
            await PlainTextResponse("403 Forbidden: missing or stale CSRF token — reload the page and try again\n",
                                    403)(scope, receive, send)
            return
        await self.app({**scope, FORM_SCOPE_KEY: form}, _replay(body), send)


async def _read(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}
    return receive
