"""One root error and the two classes every failure is sorted into.

The consume loops are the only places that decide what happens to a message; they do it
by the class of the error a handler raised.
"""

from __future__ import annotations


class WanotifyError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(WanotifyError):
    """The configuration (environment, settings table, rules) is unusable."""


class PermanentError(WanotifyError):
    """Trying again cannot help: bad input, invalid number, rejected template, 4xx."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientError(WanotifyError):
    """May succeed later: network error, timeout, 5xx, 429, provider rate limits."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class QualityLimitError(TransientError):
    """The provider says the number's quality is at risk: pause sending, don't hammer."""


class InvalidEvent(PermanentError):
    """An event that cannot become a message; ``reason`` is a short fixed label for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, code=reason)
        self.reason = reason
        self.detail = detail
