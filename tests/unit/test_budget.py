"""The sending budget's decisions (recipient interval, pair-rate back-off, daily limit with
warm-up, reserve and rolling window) against an in-memory ledger: no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wanotify.consumers.sender.budget import (
    DAILY_LIMIT,
    MAX_PAIR_LEVEL,
    PAIR_RATE,
    PAIR_RATE_QUIET_SECONDS,
    RECIPIENT_INTERVAL,
    Due,
    Ledger,
    NotYet,
    RecipientFacts,
    backoff_seconds,
    decide,
    interval_wait,
    next_backoff_level,
)
from wanotify.shared.capacity import allowance, must_leave, window_eta
from wanotify.shared.priority import Priority
from wanotify.shared.senders import SenderConfig

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = 86_400.0


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


class FakeLedger(Ledger):
    """Recipients and counted contacts in dictionaries."""

    def __init__(self) -> None:
        self.recipients: dict[str, RecipientFacts] = {}
        self.contacts: dict[tuple[str, str], datetime] = {}

    def count(self, sender: str, phone: str, first_at: datetime) -> None:
        self.contacts[(sender, phone)] = first_at

    def recipient(self, phone: str) -> RecipientFacts:
        return self.recipients.get(phone, RecipientFacts())

    def counted(self, sender: str, phone: str, since: datetime) -> bool:
        first_at = self.contacts.get((sender, phone))
        return first_at is not None and first_at > since

    def _window(self, sender: str, since: datetime) -> list[datetime]:
        return sorted(at for (s, _), at in self.contacts.items() if s == sender and at > since)

    def used(self, sender: str, since: datetime) -> int:
        return len(self._window(sender, since))

    def nth_oldest(self, sender: str, since: datetime, n: int) -> datetime | None:
        window = self._window(sender, since)
        return window[n - 1] if n <= len(window) else None


def verdict(ledger: Ledger, sender: SenderConfig, recipient: str = "+6281", priority: Priority = Priority.NORMAL,
            interval: float = 6.0, window: float = DAY) -> Due | NotYet:
    return decide(ledger, sender=sender, recipient=recipient, priority=priority, now=NOW, interval=interval,
                  window=window, customer_window=DAY)


UNLIMITED = SenderConfig(name="a", provider="fake")


# --- recipient interval ------------------------------------------------------------------------

def test_a_recipient_never_called_is_due():
    assert verdict(FakeLedger(), UNLIMITED) == Due()


def test_a_recipient_called_within_the_interval_waits_for_the_rest_of_it():
    ledger = FakeLedger()
    ledger.recipients["+6281"] = RecipientFacts(last_call_at=ago(2))
    assert verdict(ledger, UNLIMITED, interval=6) == NotYet(pytest.approx(4.0), RECIPIENT_INTERVAL)


def test_a_recipient_called_longer_ago_than_the_interval_is_due():
    ledger = FakeLedger()
    ledger.recipients["+6281"] = RecipientFacts(last_call_at=ago(6.01))
    assert verdict(ledger, UNLIMITED, interval=6) == Due()


def test_an_interval_of_zero_never_holds_a_message():
    assert interval_wait(NOW, NOW, 0) == 0
    assert interval_wait(None, NOW, 6) == 0


def test_a_call_planned_later_than_now_holds_the_recipient_for_the_interval_after_it():
    # The claim stores the planned start, which may lie a little in the future.
    assert interval_wait(NOW + timedelta(seconds=1), NOW, 2) == pytest.approx(3.0)


# --- pair-rate back-off (131056) ---------------------------------------------------------------

def test_a_recipient_backing_off_waits_until_the_back_off_ends():
    ledger = FakeLedger()
    ledger.recipients["+6281"] = RecipientFacts(backoff_until=NOW + timedelta(seconds=16))
    assert verdict(ledger, UNLIMITED) == NotYet(pytest.approx(16.0), PAIR_RATE)


def test_a_back_off_that_ended_holds_nothing():
    ledger = FakeLedger()
    ledger.recipients["+6281"] = RecipientFacts(backoff_until=ago(1))
    assert verdict(ledger, UNLIMITED) == Due()


def test_the_back_off_is_four_to_the_power_of_consecutive_hits_capped():
    assert [backoff_seconds(x) for x in range(4)] == [1, 4, 16, 64]
    assert backoff_seconds(MAX_PAIR_LEVEL + 3) == 4 ** MAX_PAIR_LEVEL


def test_consecutive_hits_climb_and_a_hit_after_a_quiet_spell_starts_again():
    assert next_backoff_level(0, None, NOW) == 0  # the first hit ever
    assert next_backoff_level(2, ago(1), NOW) == 2  # hit right after the last back-off: climbs
    assert next_backoff_level(2, ago(PAIR_RATE_QUIET_SECONDS + 1), NOW) == 0
    assert next_backoff_level(MAX_PAIR_LEVEL + 4, ago(1), NOW) == MAX_PAIR_LEVEL


def test_the_longest_wait_wins_and_names_its_reason():
    ledger = FakeLedger()
    ledger.recipients["+6281"] = RecipientFacts(last_call_at=ago(1), backoff_until=NOW + timedelta(seconds=64))
    assert verdict(ledger, UNLIMITED, interval=6) == NotYet(pytest.approx(64.0), PAIR_RATE)


# --- daily limit -------------------------------------------------------------------------------

def full_ledger(sender: str, firsts: list[float]) -> FakeLedger:
    """A ledger where ``sender`` counted one recipient per entry, that many seconds ago."""
    ledger = FakeLedger()
    for i, seconds in enumerate(firsts):
        ledger.count(sender, f"+62900{i}", ago(seconds))
    return ledger


def test_a_sender_under_its_limit_takes_a_new_recipient():
    sender = SenderConfig(name="a", provider="fake", daily_limit=5)
    assert verdict(full_ledger("a", [10, 20, 30, 40]), sender) == Due()


def test_a_full_sender_holds_a_new_recipient_until_its_oldest_contact_leaves_the_window():
    sender = SenderConfig(name="a", provider="fake", daily_limit=5)
    ledger = full_ledger("a", [10, 20, 30, 40, 50])
    assert verdict(ledger, sender, window=100) == NotYet(pytest.approx(50.0), DAILY_LIMIT)


def test_contacts_older_than_the_window_no_longer_count():
    sender = SenderConfig(name="a", provider="fake", daily_limit=5)
    assert verdict(full_ledger("a", [10, 20, 30, 40, 150]), sender, window=100) == Due()


def test_a_recipient_already_counted_in_the_window_costs_nothing():
    sender = SenderConfig(name="a", provider="fake", daily_limit=2)
    ledger = full_ledger("a", [10, 20])
    assert verdict(ledger, sender, recipient="+629000") == Due()
    assert isinstance(verdict(ledger, sender, recipient="+6281"), NotYet)


def test_a_recipient_counted_by_another_sender_still_counts_here():
    sender = SenderConfig(name="a", provider="fake", daily_limit=1)
    ledger = full_ledger("a", [10])
    ledger.count("b", "+6281", ago(5))
    assert isinstance(verdict(ledger, sender, recipient="+6281"), NotYet)


def test_a_recipient_inside_their_customer_service_window_does_not_count():
    sender = SenderConfig(name="a", provider="fake", daily_limit=1)
    ledger = full_ledger("a", [10])
    ledger.recipients["+6281"] = RecipientFacts(last_inbound_at=ago(3600))
    assert verdict(ledger, sender) == Due()
    ledger.recipients["+6281"] = RecipientFacts(last_inbound_at=ago(DAY + 1))
    assert isinstance(verdict(ledger, sender), NotYet)


def test_the_reserve_is_for_high_priority_only():
    sender = SenderConfig(name="a", provider="fake", daily_limit=5, daily_reserve=2)
    ledger = full_ledger("a", [10, 20, 30, 40])
    assert verdict(ledger, sender, priority=Priority.HIGH) == Due()
    assert verdict(ledger, sender, priority=Priority.NORMAL, window=100) == NotYet(pytest.approx(70.0), DAILY_LIMIT)
    assert isinstance(verdict(ledger, sender, priority=Priority.LOW), NotYet)


def test_a_normal_message_over_the_reserve_waits_for_enough_contacts_to_leave():
    # 3 usable (5 - 2 reserved), 4 used: two must leave, so the ETA is the 2nd oldest's exit.
    assert allowance(5, 2, Priority.NORMAL) == 3
    assert must_leave(4, 3) == 2
    sender = SenderConfig(name="a", provider="fake", daily_limit=5, daily_reserve=2)
    ledger = full_ledger("a", [10, 20, 30, 40])
    assert verdict(ledger, sender, window=100) == NotYet(pytest.approx(70.0), DAILY_LIMIT)


def test_the_warm_up_ramp_sets_the_limit_of_the_day():
    sender = SenderConfig(name="a", provider="fake", daily_limit=100, warmup=(2, 10),
                          warmup_started_at=NOW - timedelta(hours=1))
    ledger = full_ledger("a", [10, 20])
    assert isinstance(verdict(ledger, sender), NotYet)
    next_day = SenderConfig(name="a", provider="fake", daily_limit=100, warmup=(2, 10),
                            warmup_started_at=NOW - timedelta(days=1, hours=1))
    assert verdict(ledger, next_day) == Due()


def test_no_limit_means_no_daily_wait():
    assert allowance(None, 3, Priority.LOW) is None
    assert must_leave(10_000, None) == 0


def test_a_limit_no_leaving_contact_can_satisfy_looks_again_after_a_window():
    # A warm-up step smaller than the reserve leaves normal messages nothing: no exit frees room.
    sender = SenderConfig(name="a", provider="fake", daily_limit=2, daily_reserve=2)
    assert verdict(full_ledger("a", [10]), sender, window=100) == NotYet(100.0, DAILY_LIMIT)
    assert window_eta(None, NOW, 100) == 100


def test_the_eta_never_goes_negative():
    assert window_eta(ago(500), NOW, 100) == 0
