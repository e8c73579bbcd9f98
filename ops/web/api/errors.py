"""The API's errors: one exception carrying the status, a stable code and what to do; one JSON shape.

Every refusal is ``{"error": code, "message": sentence, "errors"?: [{"path", "message"}]}``,
so a client can branch on ``error`` and show ``message`` to a person.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

# Headers on every API response: nothing is cached, and JSON is never sniffed as something else.
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.code, "message": self.message, **self.extra}
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, self.status, headers={**COMMON_HEADERS, **self.headers})


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="wanotify-api"'})


def invalid(errors: list[dict[str, str]], message: str = "the event is not valid; nothing was published") -> ApiError:
    return ApiError(422, "invalid_event", message, errors=errors)


def retry_after(seconds: float) -> str:
    """Retry-After in whole seconds (the header takes no fractions), at least 1."""
    return str(max(1, int(-(-seconds // 1))))
