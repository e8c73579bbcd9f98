"""Phone numbers in, E.164 out."""

from __future__ import annotations

import phonenumbers

from shared.errors import InvalidEvent


def normalize_phone(raw: str, default_region: str) -> str:
    """Parse a local or international number and return it in E.164 (``+628114040707``).

    Accepts ``08114040707``, ``628114040707``, ``+62 811-4040-707`` and ``0062…``; a number
    written with its country code but without ``+`` is recognised when the bare digits are
    not valid in the default region.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    for candidate in _candidates(text):
        try:
            parsed = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidEvent("invalid_phone", f"not a valid phone number for region {default_region}: {mask_phone(raw)}")


def _candidates(text: str) -> list[str]:
    if text.startswith("+"):
        return [text]
    # "628114040707" in region ID parses as a local number; try it as international too.
    return [text, "+" + text]


def mask_phone(phone: str) -> str:
    """Enough of a number to recognise it in a log line, not enough to use it."""
    digits = [c for c in phone if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    return "".join(digits[:4]) + "*" * (len(digits) - 6) + "".join(digits[-2:])
