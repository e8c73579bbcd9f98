"""Settings from the environment: contract defaults, and clear errors for bad values."""

from __future__ import annotations

import pytest

from wanotify.shared.config import PROVIDER_MISSING, Settings, WhatsAppSettings, redact_url
from wanotify.shared.errors import ConfigError


def test_the_defaults_are_the_contracts():
    s = Settings.from_env({})
    assert (s.amqp_url, s.namespace, s.send_gap_seconds, s.max_retries, s.retry_delay_seconds, s.retry_backoff) == (
        "amqp://guest:guest@localhost:5672/", "wanotify", 10.0, 3, 300.0, 1.0)
    assert s.database_url == "postgresql+psycopg2://postgres@localhost:5432/wanotify"
    assert (s.default_region, s.metrics_port, s.log_level) == ("ID", None, "info")


def test_values_are_read_with_their_types():
    s = Settings.from_env({"SEND_GAP_SECONDS": "0.5", "MAX_RETRIES": "5", "METRICS_PORT": "9101",
                           "DEFAULT_REGION": "sg", "WHATSAPP_PROVIDER": "meta", "LOG_LEVEL": "DEBUG"})
    assert (s.send_gap_seconds, s.max_retries, s.metrics_port, s.default_region, s.whatsapp.provider) == (
        0.5, 5, 9101, "SG", "meta")
    assert s.log_level == "debug"


@pytest.mark.parametrize(("env", "says"), [
    ({"SEND_GAP_SECONDS": "soon"}, "SEND_GAP_SECONDS must be a number between 0 and 86400, got 'soon'"),
    ({"SEND_GAP_SECONDS": "nan"}, "SEND_GAP_SECONDS must be between 0 and 86400, got 'nan'"),
    ({"SEND_GAP_SECONDS": "inf"}, "SEND_GAP_SECONDS must be between 0 and 86400, got 'inf'"),
    ({"SEND_GAP_SECONDS": "1e308"}, "SEND_GAP_SECONDS must be between 0 and 86400"),
    ({"SEND_GAP_SECONDS": "-1"}, "SEND_GAP_SECONDS must be between 0 and 86400"),
    ({"RETRY_DELAY_SECONDS": "-inf"}, "RETRY_DELAY_SECONDS must be between 0 and 604800"),
    ({"RETRY_DELAY_SECONDS": "604801"}, "RETRY_DELAY_SECONDS must be between 0 and 604800"),
    ({"QUALITY_PAUSE_SECONDS": "inf"}, "QUALITY_PAUSE_SECONDS must be between 0 and 604800"),
    ({"WHATSAPP_TIMEOUT_SECONDS": "nan"}, "WHATSAPP_TIMEOUT_SECONDS must be between 0.1 and 600"),
    ({"MAX_RETRIES": "1.5"}, "MAX_RETRIES must be a whole number between 0 and 100"),
    ({"MAX_RETRIES": "-1"}, "MAX_RETRIES must be between 0 and 100"),
    ({"MAX_RETRIES": "101"}, "MAX_RETRIES must be between 0 and 100"),
    ({"RETRY_BACKOFF": "0.5"}, "RETRY_BACKOFF must be between 1 and 10"),
    ({"METRICS_PORT": "70000"}, "METRICS_PORT must be between 1 and 65535"),
    ({"WHATSAPP_PROVIDER": "twilio"}, "WHATSAPP_PROVIDER must be one of meta, gateway, fake"),
    ({"WANOTIFY_NAMESPACE": "my queues"}, "WANOTIFY_NAMESPACE must not contain spaces"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of debug, info, warning, error"),
    ({"DEFAULT_REGION": "IDN"}, "DEFAULT_REGION must be a country's two-letter code such as ID, got 'IDN'"),
    ({"DEFAULT_REGION": "XX"}, "DEFAULT_REGION must be a country's two-letter code such as ID, got 'XX'"),
])
def test_a_bad_value_is_refused_with_a_message_naming_the_variable_and_its_bounds(env, says):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert str(refused.value).startswith(says)


def test_the_bounds_themselves_are_accepted():
    s = Settings.from_env({"SEND_GAP_SECONDS": "86400", "MAX_RETRIES": "100", "RETRY_DELAY_SECONDS": "0"})
    assert (s.send_gap_seconds, s.max_retries, s.retry_delay_seconds) == (86400.0, 100, 0.0)


def test_no_provider_is_chosen_by_default_and_sending_requires_one():
    settings = Settings.from_env({})
    assert settings.whatsapp.provider is None
    assert WhatsAppSettings().provider is None
    with pytest.raises(ConfigError) as refused:
        settings.require_provider()
    assert str(refused.value) == PROVIDER_MISSING
    assert str(refused.value).startswith(
        "WHATSAPP_PROVIDER is not set: choose meta, gateway or fake (fake sends nothing)")
    assert Settings.from_env({"WHATSAPP_PROVIDER": " Fake "}).require_provider() == "fake"


def test_the_provider_is_described_in_one_line_without_its_secrets():
    meta = Settings.from_env({"WHATSAPP_PROVIDER": "meta", "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
                              "WHATSAPP_ACCESS_TOKEN": "EAAG-secret-token",
                              "WHATSAPP_API_BASE_URL": "https://user:pw@graph.example.com"}).whatsapp.describe()
    assert "meta" in meta and "1234567890" in meta and "graph.example.com" in meta
    assert "EAAG-secret-token" not in meta and ":pw@" not in meta and "\n" not in meta
    gateway = Settings.from_env({"WHATSAPP_PROVIDER": "gateway", "WHATSAPP_API_KEY": "k-secret",
                                 "WHATSAPP_SENDER": "628000111222",
                                 "WHATSAPP_API_BASE_URL": "https://gw.example.com"}).whatsapp.describe()
    assert "gateway" in gateway and "628000111222" in gateway and "k-secret" not in gateway
    assert "nothing reaches WhatsApp" in Settings.from_env({"WHATSAPP_PROVIDER": "fake"}).whatsapp.describe()


@pytest.mark.parametrize("given", ["postgresql://u:pw@db:5432/app", "postgres://u:pw@db:5432/app",
                                   "postgresql+psycopg2://u:pw@db:5432/app"])
def test_the_usual_postgresql_url_forms_are_accepted(given):
    assert Settings.from_env({"DATABASE_URL": given}).database_url == "postgresql+psycopg2://u:pw@db:5432/app"


@pytest.mark.parametrize(("env", "says"), [
    ({"DATABASE_URL": "nonsense"}, "DATABASE_URL must be a PostgreSQL URL"),
    ({"DATABASE_URL": "mysql://root:hunter2@db/app"}, "DATABASE_URL must be a PostgreSQL URL"),
    ({"DATABASE_URL": "postgresql://root:hunter2@db:port/app"}, "DATABASE_URL cannot be parsed"),
    ({"DATABASE_URL": "postgresql://root:hunter2@db:5432"}, "DATABASE_URL names no database"),
    ({"AMQP_URL": "http://x"}, "AMQP_URL must be amqp://"),
    ({"AMQP_URL": "amqp://guest:hunter2@a:5672/,redis://b"}, "AMQP_URL must be amqp://"),
    ({"AMQP_URL": "amqp://guest:hunter2@a:notaport/"}, "AMQP_URL must be amqp://"),
])
def test_an_unusable_url_is_refused_without_showing_its_password(env, says):
    with pytest.raises(ConfigError, match=says) as refused:
        Settings.from_env(env)
    assert "hunter2" not in str(refused.value)


def test_several_comma_separated_broker_urls_are_accepted():
    urls = "amqp://u:p@rabbit-1:5672/,amqps://u:p@rabbit-2:5671/"
    assert Settings.from_env({"AMQP_URL": urls}).amqp_url == urls


@pytest.mark.parametrize(("url", "shown"), [
    ("amqp://guest:s3cret@localhost:5672/", "amqp://guest:***@localhost:5672/"),
    ("amqp://a:one@h1:5672/,amqp://b:two@h2:5672/v", "amqp://a:***@h1:5672/,amqp://b:***@h2:5672/v"),
    ("postgresql+psycopg2://app:p%40ss@db:5432/app", "postgresql+psycopg2://app:***@db:5432/app"),
    ("postgresql://app:p@ss:w0rd@db/app", "postgresql://app:***@db/app"),
    ("postgresql://app@db/app?sslmode=require&password=s3cret", "postgresql://app@db/app?sslmode=require&password=***"),
    ("postgresql://postgres@localhost:5432/wanotify", "postgresql://postgres@localhost:5432/wanotify"),
    ("app:s3cret@db", "app:***@db"),
    ("nonsense", "nonsense"),
])
def test_urls_are_shown_with_their_passwords_masked(url, shown):
    assert redact_url(url) == shown
