"""Runtime settings are checked against real bounds before they are stored."""

from __future__ import annotations

import pytest

from wanotify.shared.errors import ConfigError
from wanotify.shared.runtime import KEYS, parse_value


@pytest.mark.parametrize(("key", "raw", "bounds"), [
    ("message_delay_seconds", "-1", "between 0 and 86400"),
    ("message_delay_seconds", "inf", "between 0 and 86400"),
    ("message_delay_seconds", "nan", "between 0 and 86400"),
    ("message_delay_seconds", "1e308", "between 0 and 86400"),
    ("message_delay_seconds", "86400.5", "between 0 and 86400"),
    ("retry_delay_minutes", "1e308", "between 0 and 10080"),
    ("retry_delay_minutes", "-0.5", "between 0 and 10080"),
    ("max_retry_attempts", "101", "between 0 and 100"),
    ("max_retry_attempts", "1e308", "a whole number between 0 and 100"),
    ("max_retry_attempts", "many", "a whole number between 0 and 100"),
])
def test_a_value_out_of_bounds_is_refused_with_the_bounds_named(key, raw, bounds):
    with pytest.raises(ConfigError) as refused:
        parse_value(key, raw)
    assert str(refused.value) == f"invalid value for {key}: must be {bounds}, got {raw!r}"


@pytest.mark.parametrize(("key", "raw", "value"), [
    ("message_delay_seconds", "0", 0.0),
    ("message_delay_seconds", "86400", 86400.0),
    ("retry_delay_minutes", "10080", 10080.0),
    ("max_retry_attempts", " 100 ", 100),
    ("auto_retry_enabled", "off", False),
])
def test_values_within_the_bounds_are_accepted(key, raw, value):
    assert parse_value(key, raw) == value


def test_turning_auto_retry_off_is_described_as_holding_failures_for_retry_failed():
    description = KEYS["auto_retry_enabled"].description
    assert "wait as failed" in description and "wanotify retry-failed" in description
    assert "dead" not in description  # policy.HoldFailed: nothing is parked


def test_every_numeric_setting_names_its_bounds_in_its_description():
    for key in ("max_retry_attempts", "retry_delay_minutes", "message_delay_seconds"):
        assert any(ch.isdigit() for ch in KEYS[key].description.split("(")[0]), key
