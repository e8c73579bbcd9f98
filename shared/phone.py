"""Phone numbers in, E.164 out."""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers

from wanotify.shared.errors import InvalidEvent
from wanotify.shared.events import MAX_NESTING


def normalize_phone(raw: str, default_region: str) -> str:
    """Parse a local or international number and return it in E.164 (``+628114040707``).

    Accepts ``08114040707``, ``628114040707``, ``+62 811-4040-707`` and ``0062…``. Digits
    without ``+`` may read two ways, local and international: the likelier is tried first
    (``_candidates``), and a reading that is a mobile number wins over one that is not, since
    WhatsApp reaches members on their mobiles.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    first_valid = None
    for candidate in _candidates(text, default_region):
        parsed = _valid(candidate, default_region)
        if parsed is not None and phonenumbers.number_type(parsed) in MOBILE_TYPES:
            return _e164(parsed)
        first_valid = first_valid or parsed
    if first_valid is None:
        raise InvalidEvent("invalid_phone", f"not a valid phone number for region {default_region}: {mask_phone(raw)}")
    return _e164(first_valid)


MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


def _valid(candidate: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def _e164(parsed: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _candidates(text: str, default_region: str) -> list[str]:
    """The readings of ``text`` to try, the likelier first. Where local numbers are written with
    a trunk prefix (``0`` in Indonesia), digits that begin with the country code instead are an
    international number written without ``+``: ``62 21 1234567`` is Jakarta, although it is
    also a valid local number in area 0622. Elsewhere (Italy has no trunk prefix: ``39…`` is
    as likely a local mobile) the local reading comes first, and ``+`` is the fallback."""
    if text.startswith("+"):
        return [text]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(default_region)
    trunk = metadata.national_prefix if metadata is not None else None
    country_code = str(phonenumbers.country_code_for_region(default_region))
    digits = "".join(c for c in text if c.isdigit())
    if trunk and not digits.startswith(trunk) and digits.startswith(country_code):
        return ["+" + text, text]
    return [text, "+" + text]


# Masking keeps at least this many digits hidden, shows at most the last two, and shows the
# first digits (the country and operator code, at most four) only when that still holds.
HIDDEN_AT_LEAST = 6
TAIL_SHOWN = 2
HEAD_SHOWN_AT_MOST = 4
NO_DIGITS = "***"
# Seven or more digits, maybe spaced or dashed, not part of a longer token (a UUID, an id like
# WD-123…) nor of a time of day (``08:00:00.123456``: digits after or before "<digit>:").
_DIGIT_RUN = re.compile(r"(?<![\w-])(?<!\d:)\+?\d(?:[\s().-]*\d){6,}(?!:\d)(?![\w-])")
# Digit runs shaped like what members are told besides phone numbers: an amount with thousands
# dots (Rp 1.500.000) and a date (2026-12-07, 07-12-2026). A phone number is never written so.
_NOT_A_PHONE = re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+|\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{4}")


def mask_phone(phone: str) -> str:
    """Enough of a number to recognise it in a log line, not enough to use it.

    ``+628114040707`` gives ``6281******07``; numbers too short to hide six digits and still
    show some are masked entirely, and an input without digits gives ``***`` (never an empty
    string, which reads as "no number" in an error message).
    """
    digits = [c for c in phone if c.isdigit()]
    if not digits:
        return NO_DIGITS
    tail = TAIL_SHOWN if len(digits) >= HIDDEN_AT_LEAST + TAIL_SHOWN else 0
    head = min(HEAD_SHOWN_AT_MOST, len(digits) - tail - HIDDEN_AT_LEAST)
    head = head if head >= 2 else 0
    hidden = len(digits) - head - tail
    return "".join(digits[:head]) + "*" * hidden + "".join(digits[len(digits) - tail:])


def mask_phones_in_text(text: str) -> str:
    """``text`` with every run of seven or more digits (spaces, dots, dashes allowed) masked, but
    amounts with thousands dots, dates and times of day, which are no phone numbers."""
    return _DIGIT_RUN.sub(lambda m: m.group() if _NOT_A_PHONE.fullmatch(m.group()) else mask_phone(m.group()), text)


def mask_event_body(body: str) -> str:
    """A raw event body fit to print: as JSON, every ``phone`` field masked (``data.phone`` and any
    other) and long digit runs in other strings; if it is not JSON, long digit runs anywhere.
    Objects and arrays deeper than ``MAX_NESTING`` levels are printed as ``"…"``."""
    body = _cut_below(body, MAX_NESTING)
    try:
        event = json.loads(body)
    except ValueError:
        return mask_phones_in_text(body)
    return json.dumps(_masked(event), ensure_ascii=False)


# A JSON string (skipped whole: brackets inside it are text) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
ELLIPSIS = '"…"'


def _cut_below(text: str, limit: int) -> str:
    """``text`` with every object or array deeper than ``limit`` levels replaced by ``"…"``, so
    nothing after it recurses that deep (a parked event may nest thousands of levels). A
    JSON body stays JSON; an unfinished one is cut from its first too-deep bracket on."""
    kept, resume_at, level = [], 0, 0
    for token in _STRING_OR_BRACKET.finditer(text):
        if token.group() in ("[", "{"):
            level += 1
            if level == limit + 1:
                kept.append(text[resume_at:token.start()])
        elif token.group() in ("]", "}"):
            if level == limit + 1:
                kept.append(ELLIPSIS)
                resume_at = token.end()
            level = max(level - 1, 0)
    if level > limit:
        return "".join(kept) + ELLIPSIS
    return "".join(kept) + text[resume_at:]


def _masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    if "phone" in key.lower() and isinstance(value, str | int) and not isinstance(value, bool):
        return mask_phone(str(value))
    return mask_phones_in_text(value) if isinstance(value, str) else value
