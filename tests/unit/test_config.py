"""Settings from the environment: contract defaults, and clear errors for bad values."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigError


def test_the_defaults_are_the_contracts():
    s = Settings.from_env({})
    assert (s.amqp_url, s.namespace, s.send_gap_seconds, s.max_retries, s.retry_delay_seconds, s.retry_backoff) == (
        "amqp://guest:guest@localhost:5672/", "wanotify", 10.0, 3, 300.0, 1.0)
    assert s.database_url == "postgresql+psycopg2://postgres@localhost:5432/wanotify"
    assert (s.default_region, s.whatsapp.provider, s.metrics_port) == ("ID", "fake", None)


def test_values_are_read_with_their_types():
    s = Settings.from_env({"SEND_GAP_SECONDS": "0.5", "MAX_RETRIES": "5", "METRICS_PORT": "9101",
                           "DEFAULT_REGION": "sg", "WHATSAPP_PROVIDER": "meta"})
    assert (s.send_gap_seconds, s.max_retries, s.metrics_port, s.default_region, s.whatsapp.provider) == (
        0.5, 5, 9101, "SG", "meta")


@pytest.mark.parametrize(("env", "says"), [
    ({"SEND_GAP_SECONDS": "soon"}, "SEND_GAP_SECONDS must be a number"),
    ({"SEND_GAP_SECONDS": "nan"}, "SEND_GAP_SECONDS must be >= 0"),
    ({"MAX_RETRIES": "1.5"}, "MAX_RETRIES must be a whole number"),
    ({"MAX_RETRIES": "-1"}, "MAX_RETRIES must be >= 0"),
    ({"RETRY_BACKOFF": "0.5"}, "RETRY_BACKOFF must be >= 1"),
    ({"WHATSAPP_PROVIDER": "twilio"}, "WHATSAPP_PROVIDER must be one of meta, gateway, fake"),
    ({"WANOTIFY_NAMESPACE": "my queues"}, "must not contain spaces"),
])
def test_a_bad_value_is_refused_with_a_message_naming_the_variable(env, says):
    with pytest.raises(ConfigError, match=says):
        Settings.from_env(env)
