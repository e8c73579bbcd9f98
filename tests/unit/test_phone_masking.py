"""Masked phone numbers: recognisable in a log line, never usable, whatever their length."""

from __future__ import annotations

import json

import pytest

from wanotify.shared.errors import InvalidEvent
from wanotify.shared.phone import mask_event_body, mask_phone, mask_phones_in_text, normalize_phone

DIGITS = "62811404070712345678"  # 20 distinct-enough digits; prefixes give every length


def visible(masked: str) -> str:
    return "".join(ch for ch in masked if ch.isdigit())


@pytest.mark.parametrize("length", range(21))
def test_at_most_the_last_two_and_first_four_digits_show_and_always_six_hide(length):
    number = DIGITS[:length]
    masked = mask_phone(number)
    shown = visible(masked)
    hidden = masked.count("*")

    assert masked, "an empty masked value reads as 'no number'"
    assert hidden >= min(6, max(length, 1))
    if length < 8:
        assert shown == ""  # too short to show anything and still hide six digits
    else:
        assert masked.endswith(number[-2:]) and masked[-3] == "*"
        head = masked[: len(masked) - len(masked.lstrip("0123456789"))]
        assert number.startswith(head) and len(head) <= 4
        assert head == "" or len(head) >= 2
        assert len(shown) <= length - 6
    assert len(shown) <= length // 2


def test_a_phone_number_keeps_its_country_and_operator_code_and_last_two_digits():
    assert mask_phone("+62 811-4040-707") == "6281******07"
    assert mask_phone("08114040707") == "081******07"


@pytest.mark.parametrize("garbage", ["", "   ", "not a phone", "+--()"])
def test_an_input_without_digits_still_gives_a_visible_mask(garbage):
    assert mask_phone(garbage) == "***"


@pytest.mark.parametrize("phone", ["", "12", "+999 123", "0811 40"])
def test_an_invalid_number_is_reported_with_a_nonempty_mask_and_none_of_its_digits(phone):
    with pytest.raises(InvalidEvent) as refused:
        normalize_phone(phone, "ID")
    shown = refused.value.detail.rsplit(": ", 1)[1]
    assert shown and set(shown) == {"*"}


@pytest.mark.parametrize(("phone", "e164"), [
    # Written with the country code but without "+": read as the international number first, even
    # where the same digits are also a valid local number (62812345678 is a fixed line in area 0628).
    ("62812345678", "+62812345678"), ("62274123456", "+62274123456"), ("6221 1234567", "+62211234567"),
    ("628114040707", "+628114040707"),
    # Local forms still read as local numbers.
    ("08114040707", "+628114040707"), ("8114040707", "+628114040707"), ("0274 123456", "+62274123456"),
    ("+62 811-4040-707", "+628114040707"), ("0062 811 4040 707", "+628114040707")])
def test_a_number_is_read_in_its_usual_indonesian_forms(phone, e164):
    assert normalize_phone(phone, "ID") == e164


@pytest.mark.parametrize(("phone", "region", "e164"), [
    # Italian mobiles begin with 3, and 39 is Italy's code: +39 12345678 is no number, the local one is.
    ("3912345678", "IT", "+393912345678"),
    # Italy writes no trunk prefix, so 39… is as likely local: here both readings are valid, and
    # the local one is the mobile (+39 02 123456 is a Milan landline).
    ("390 212 3456", "IT", "+393902123456"), ("3906666276", "IT", "+393906666276"),
    # Cuba does write a trunk 0, but its mobiles begin with 5: the mobile reading wins.
    ("53484531", "CU", "+5353484531"),
    ("6581234567", "SG", "+6581234567"), ("12125551234", "US", "+12125551234")])
def test_digits_that_only_start_like_the_country_code_are_still_a_local_number(phone, region, e164):
    assert normalize_phone(phone, region) == e164


def test_a_parked_event_body_is_printed_with_its_phone_masked_and_the_rest_intact():
    body = json.dumps({"event_id": "6f1c2d3e-8a9b-4c5d-9e0f-112233445566", "event_type": "member.registered",
                       "data": {"member_id": "M-1001", "name": "Budi", "phone": "08114040707", "amount": 150000}})
    masked = json.loads(mask_event_body(body))
    assert masked["data"]["phone"] == "081******07"
    assert masked["event_id"] == "6f1c2d3e-8a9b-4c5d-9e0f-112233445566"
    assert masked["data"] | {"phone": "08114040707"} == json.loads(body)["data"]


def test_phone_numbers_anywhere_in_a_json_body_are_masked():
    body = json.dumps({"phone": 628114040707, "data": {"variables": {"note": "call +62 811 4040 707"}},
                       "withdrawal_id": "WD-20261122001"})
    masked = mask_event_body(body)
    assert "4040" not in masked and "6281******07" in masked and "WD-20261122001" in masked


@pytest.mark.parametrize("depth", [33, 900, 3000])
def test_a_deeply_nested_body_is_printed_down_to_the_limit_and_the_rest_as_an_ellipsis(depth):
    deep = "[" * depth + '"tel 08114040707"' + "]" * depth
    body = '{"data": {"phone": "08114040707", "x": ' + deep + "}}"
    masked = mask_event_body(body)
    assert json.loads(masked)["data"]["phone"] == "081******07"
    assert masked == '{"data": {"phone": "081******07", "x": ' + "[" * 30 + '"…"' + "]" * 30 + "}}"


def test_a_deeply_nested_body_that_is_not_json_is_cut_at_the_limit_too():
    masked = mask_event_body('{"data": {"phone": "0811-4040-707", "x": ' + "[" * 3000 + "08114040707")
    assert masked == '{"data": {"phone": "081******07", "x": ' + "[" * 30 + '"…"'


def test_a_body_that_is_not_json_has_its_long_digit_runs_masked():
    masked = mask_event_body('{"data": {"phone": "0811-4040-707", oops')
    assert "4040" not in masked and "081******07" in masked
    assert mask_phones_in_text("amount 150000, order M-1001") == "amount 150000, order M-1001"


@pytest.mark.parametrize("text", [
    "pembayaran Anda sebesar Rp 1.500.000 telah kami terima", "Rp 15.000.000,00", "komisi 150.000.000",
    '"occurred_at": "2026-12-07T08:00:00.123456+00:00"', "2026-12-07 08:00:00.123456", "jatuh tempo 2026-12-07.",
    "tanggal 07-12-2026", "pukul 08:00:00.546337"])
def test_amounts_dates_and_times_are_shown_as_they_are(text: str) -> None:
    assert mask_phones_in_text(text) == text


@pytest.mark.parametrize(("text", "hidden"), [
    ("HP:08114040707", "4040"), ("hubungi 0812.3456.7890", "3456"), ("+62 811-4040-707, terima kasih", "4040"),
    ("(0811) 4040 707", "4040"), ("nomor 628114040707.", "4040"), ("tel 0811-4040-707 08:00", "4040")])
def test_phone_numbers_written_near_amounts_dates_and_times_are_still_masked(text: str, hidden: str) -> None:
    assert hidden not in mask_phones_in_text(text)
