"""The console's small rules: the refresh period from the URL, the login throttle, safe redirects."""

from __future__ import annotations

import pytest

from wanotify.ops.web.console.login import _safe_next
from wanotify.ops.web.console.overview import refresh_seconds
from wanotify.ops.web.console.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("raw", "seconds"), [
    (None, 30), ("", 30), ("5", 5), ("2", 2), ("60", 60), ("1", 2), ("600", 60), ("7.4", 7),
    ("off", None), ("OFF", None), ("0", None), ("pause", None), ("soon", 30),
])
def test_the_refresh_period_defaults_to_30_s_and_stays_between_2_and_60_or_off(raw: str | None,
                                                                                seconds: int | None) -> None:
    assert refresh_seconds(raw) == seconds


def test_five_failures_lock_a_user_name_for_the_rest_of_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for n in range(5):
        assert throttle.wait_seconds("Alice", "10.0.0.1") == 0
        throttle.failed("alice", f"10.0.0.{n}")
        clock.now += 60
    assert throttle.wait_seconds("ALICE", "10.0.0.9") == pytest.approx(900 - 300)  # until the first failure ages out
    assert throttle.wait_seconds("bob", "10.0.0.9") == 0
    clock.now += 601
    assert throttle.wait_seconds("alice", "10.0.0.9") == 0


def test_twenty_failures_lock_an_address_whatever_the_names() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for n in range(20):
        throttle.failed(f"user{n}", "10.0.0.1")
    assert throttle.wait_seconds("someone-new", "10.0.0.1") > 0
    assert throttle.wait_seconds("someone-new", "10.0.0.2") == 0


def test_a_success_clears_its_user_names_failures() -> None:
    throttle = LoginThrottle(clock=Clock())
    for _ in range(4):
        throttle.failed("alice", "10.0.0.1")
    throttle.succeeded("alice")
    throttle.failed("alice", "10.0.0.1")
    assert throttle.wait_seconds("alice", "10.0.0.1") == 0


@pytest.mark.parametrize(("target", "safe"), [
    ("/messages?status=dead", "/messages?status=dead"), (None, "/"), ("", "/"), ("//evil.example", "/"),
    ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("messages", "/"),
])
def test_after_login_only_a_path_on_this_site_is_followed(target: str | None, safe: str) -> None:
    assert _safe_next(target) == safe
