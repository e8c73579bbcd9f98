"""Approved-template mappings: what they accept, and the Cloud API components they render."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import pytest

from wanotify.shared.meta_templates import (
    Mapping,
    MappingError,
    check_mapping,
    check_params,
    fill,
    send_variables,
    stored_variables,
)
from wanotify.shared.templates import Placeholder, trial_render

PAYMENT = {
    "body": ["{{ name }}", "{{ amount|money }}"],
    "buttons": [{"index": 0, "sub_type": "url", "text": "{{ payment_url|replace('https://pay.example.com/', '') }}"}],
}
VARIABLES = {"name": "Budi", "amount": 150000, "payment_url": "https://pay.example.com/i/abc123",
             "phone": "+628114040707"}


def test_positional_body_and_a_url_button_become_the_cloud_api_components() -> None:
    call = fill(Mapping("payment_link_v2", "id", "utility", PAYMENT), VARIABLES)
    assert call.as_json() == {
        "name": "payment_link_v2",
        "language": {"code": "id"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "150.000"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "i/abc123"}]},
        ],
    }


def test_named_parameters_and_a_header_are_sent_with_their_names() -> None:
    params = {"header": ["{{ name }}"], "body": {"customer_name": "{{ name }}", "total": "Rp {{ amount|money }}"}}
    call = fill(Mapping("receipt", "en_US", "utility", params), VARIABLES)
    assert call.components == [
        {"type": "header", "parameters": [{"type": "text", "text": "Budi"}]},
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "customer_name", "text": "Budi"},
                                        {"type": "text", "parameter_name": "total", "text": "Rp 150.000"}]},
    ]


def test_a_template_without_parameters_sends_no_components() -> None:
    assert fill(Mapping("hello", "id", "utility", {}), {}).as_json() == {"name": "hello", "language": {"code": "id"}}


def test_line_breaks_and_long_runs_of_spaces_are_flattened_because_meta_refuses_them() -> None:
    call = fill(Mapping("t", "id", "utility", {"body": ["{{ text }}"]}), {"text": "a\n\tb      c"})
    assert call.components[0]["parameters"][0]["text"] == "a b c"


def test_a_parameter_that_cannot_render_is_named_in_the_error() -> None:
    with pytest.raises(MappingError, match=r"parameter body\[1\].*'nickname' is undefined"):
        fill(Mapping("t", "id", "utility", {"body": ["{{ name }}", "{{ nickname }}"]}), VARIABLES)


FREE = Mapping("loyalty_code_v1", "id", "marketing", {
    "body": ["{{ 'VIP' if points >= 100 else 'member' }}"],
    "buttons": [{"index": 0, "sub_type": "url", "text": "{{ code | urlencode }}"}]})
PLACEHOLDERS = {"points": Placeholder("points"), "code": Placeholder("code"), "phone": "+628114040707"}


def test_sample_placeholders_are_tried_use_by_use_when_the_trial_render_fills_a_mapping() -> None:
    call = fill(FREE, PLACEHOLDERS, renderer=trial_render)
    assert [c["parameters"][0]["text"] for c in call.components] == ["VIP", "%3Ccode%3E"]
    with pytest.raises(MappingError, match=r"parameter body\[0\].*ZeroDivisionError"):
        fill(Mapping("t", "id", "utility", {"body": ["{{ code | urlencode }}{{ 1 / 0 }}"]}), PLACEHOLDERS,
             renderer=trial_render)


def test_a_send_renders_the_parameters_with_the_real_values_as_they_are() -> None:
    # only a check or a preview on sample data gives a placeholder its text
    with pytest.raises(MappingError, match=r"parameter buttons\[0\]"):
        fill(FREE, PLACEHOLDERS)
    call = fill(FREE, {"points": 50, "code": "A B", "phone": "+628114040707"})
    assert [c["parameters"][0]["text"] for c in call.components] == ["member", "A%20B"]


@pytest.mark.parametrize(("params", "message"), [
    ([], "must be a JSON object"),
    ({"footer": ["x"]}, "unknown key"),
    ({"body": "{{ name }}"}, "must be a list"),
    ({"body": {"Customer Name": "{{ name }}"}}, "not a parameter name"),
    ({"body": [""]}, "non-empty template expression"),
    ({"body": [3]}, "non-empty template expression"),
    ({"body": ["{{ name "]}, "syntax error"),
    ({"buttons": {"index": 0}}, "must be a list"),
    ({"buttons": [{"index": 0, "text": "x"}]}, "exactly index, sub_type and text"),
    ({"buttons": [{"index": 12, "sub_type": "url", "text": "x"}]}, "index must be"),
    ({"buttons": [{"index": 0, "sub_type": "url", "text": "a"}, {"index": 0, "sub_type": "url", "text": "b"}]},
     "distinct"),
    ({"buttons": [{"index": 0, "sub_type": "quick_reply", "text": "x"}]}, "only url buttons"),
])
def test_a_malformed_mapping_is_refused_with_what_to_fix(params: Any, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        check_params(params)


@pytest.mark.parametrize(("name", "language", "category", "message"), [
    ("Payment Link", "id", "utility", "--meta-name"),
    ("payment_link", "Indonesian", "utility", "--meta-language"),
    ("payment_link", "id", "promo", "--meta-category"),
])
def test_names_languages_and_categories_are_checked(name: str, language: str, category: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        check_mapping(name, language, category, {})


def test_a_good_mapping_passes_the_check_unchanged() -> None:
    assert check_mapping("payment_link_v2", "en_US", "utility", PAYMENT) == Mapping("payment_link_v2", "en_US",
                                                                                    "utility", PAYMENT)


def test_stored_variables_are_json_without_the_phone_and_the_phone_comes_back_at_send_time() -> None:
    event_id = uuid.uuid4()
    stored = stored_variables({"phone": "+628114040707", "amount": Decimal("150000"), "fee": Decimal("2500.50"),
                               "occurred_at": datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.UTC),
                               "event_id": event_id, "items": [Decimal("1")], "name": "Budi"})
    assert stored == {"amount": 150000, "fee": 2500.5, "occurred_at": "2026-11-22T10:00:00+00:00",
                      "event_id": str(event_id), "items": [1], "name": "Budi"}
    assert send_variables(stored, "+628114040707")["phone"] == "+628114040707"
    assert send_variables(None, "+62811") == {"phone": "+62811"}
