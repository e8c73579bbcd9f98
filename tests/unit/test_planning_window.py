"""The notifier's prefetch window keeps the event bytes it may hold under a budget, and its
publish backoff grows after each failure in a row."""

from __future__ import annotations

from wanotify.consumers.notifier.backoff import Backoff
from wanotify.consumers.notifier.window import PrefetchWindow

MB = 1024 * 1024


def feed(window: PrefetchWindow, size: int, n: int) -> list[int]:
    changes = [window.observe(size) for _ in range(n)]
    return [c for c in changes if c is not None]


def test_the_window_starts_small_and_doubles_up_to_its_maximum_while_events_are_small():
    window = PrefetchWindow(32 * MB, max_count=600)
    assert window.count == 4
    assert feed(window, 300, 2000) == [8, 16, 32, 64, 128, 256, 512, 600]


def test_a_large_event_shrinks_the_window_at_once_so_held_bytes_fit_the_budget():
    window = PrefetchWindow(32 * MB, max_count=600)
    feed(window, 300, 2000)
    assert window.observe(5 * MB) == 6
    assert window.count * 5 * MB <= 32 * MB


def test_an_event_larger_than_the_budget_leaves_a_window_of_one():
    window = PrefetchWindow(32 * MB, max_count=600)
    assert window.observe(100 * MB) == 1


def test_after_large_events_the_window_grows_back_only_once_small_ones_have_filled_two_epochs():
    window = PrefetchWindow(32 * MB, max_count=600)
    feed(window, 5 * MB, 50)
    assert window.count == 6
    assert feed(window, 300, 500) == []  # the large ones are still recent
    feed(window, 300, 1500)
    assert window.count == 600


def test_the_backoff_doubles_after_each_failure_up_to_its_cap_and_resets_on_success():
    backoff = Backoff(first=0.5, factor=2, cap=4)
    assert [backoff.failed() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.succeeded()
    assert backoff.failed() == 0.5
