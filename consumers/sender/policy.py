"""What a failed call leads to: a retry later, a pause of the sender, a deferral of the
recipient, a dead letter, or a cancellation. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace

from wanotify.consumers.providers.classify import QUALITY_META_CODES, RecipientOptedOut
from wanotify.shared.errors import PermanentError, QualityLimitError, TransientError
from wanotify.shared.runtime import RuntimeSettings


@dataclass(frozen=True)
class Retry:
    delay_seconds: float


@dataclass(frozen=True)
class HoldFailed:
    """Automatic retry is off: the message waits as ``failed`` for ``wanotify retry-failed``."""


@dataclass(frozen=True)
class Dead:
    reason: str  # "permanent" or "out_of_retries": a metric label


@dataclass(frozen=True)
class Pause:
    """Pause the sender (number). The message goes again after the pause without spending a
    retry, unless it has now hit a quality code on more tries than ``MAX_RETRIES`` allows: then
    it is parked (``park``), so one message can never pause its number again and again."""

    seconds: float
    park: bool = False


@dataclass(frozen=True)
class PairRate:
    """Too many messages to this recipient (Cloud API 131056): defer it, without spending a retry,
    for the back-off the budget gives (4^X s)."""


@dataclass(frozen=True)
class Cancel:
    """The recipient does not want it (131050): nothing to replay, the row says ``cancelled``."""

    reason: str


Decision = Retry | HoldFailed | Dead | Pause | PairRate | Cancel

PAIR_RATE_CODE = "meta_131056"
# Codes about the number, not the message, that the provider layer does not raise as a quality
# limit: 131031, the business account is locked. Sending on would only be refused again.
SENDER_STOP_CODES = frozenset({"meta_131031"})
# Every code that pauses a number, as a metric label; any other (another provider's) is "other".
PAUSE_CODES = frozenset({f"meta_{code}" for code in QUALITY_META_CODES}) | SENDER_STOP_CODES


def pause_code(code: str | None) -> str:
    """The label a pause is counted under: Meta's code when it is one of the few that pause."""
    return code if code in PAUSE_CODES else "other"


def bounded(pause: Pause, earlier_pauses: int, runtime: RuntimeSettings) -> Pause:
    """``pause`` for a message that caused ``earlier_pauses`` quality pauses before this one."""
    return replace(pause, park=earlier_pauses >= runtime.max_retry_attempts)


def decide(error: Exception, retries_used: int, runtime: RuntimeSettings, backoff: float, quality_pause: float) -> Decision:
    """Decide for a failed call that had ``retries_used`` retries before it (0 = the first call)."""
    if isinstance(error, QualityLimitError) or getattr(error, "code", None) in SENDER_STOP_CODES:
        # Retrying would hurt the number's quality rating further: stop sending for a while
        # and try the same message again afterwards, without spending one of its retries
        # (``bounded`` parks it once it has caused more pauses than it has retries).
        return Pause(max(quality_pause, getattr(error, "retry_after", None) or 0))
    if isinstance(error, TransientError) and error.code == PAIR_RATE_CODE:
        return PairRate()
    if isinstance(error, RecipientOptedOut):
        return Cancel(error.code or "opted_out")
    if isinstance(error, PermanentError) or not isinstance(error, TransientError):
        return Dead("permanent")
    if retries_used >= runtime.max_retry_attempts:
        return Dead("out_of_retries")
    if not runtime.auto_retry_enabled:
        return HoldFailed()
    delay = runtime.retry_delay_seconds(retries_used + 1, backoff)
    return Retry(max(delay, error.retry_after or 0.0))
