"""Mapping a template to its approved WhatsApp template from the command line, as an admin does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from tests.e2e.test_cli import one_error_line, run_cli
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MetaTemplate, Template

PARAMS = {"body": ["{{ name }}", "{{ amount|money }}"],
          "buttons": [{"index": 0, "sub_type": "url", "text": "{{ payment_url|replace('https://pay.example.com/', '') }}"}]}
MAP = ("templates", "set", "payment_link", "--meta-name", "payment_link_v2", "--meta-language", "id")


@pytest.fixture
def stack(stack, sessions) -> Iterator[object]:  # type: ignore[no-untyped-def]
    yield stack
    with transaction(sessions) as session:
        session.execute(update(Template).values(meta_name=None, meta_language=None, meta_category=None,
                                                meta_params=None))
        session.query(MetaTemplate).delete()


@pytest.mark.parametrize(("args", "says"), [
    (("--meta-category", "utility", "--meta-params", '{"body": ["{{ nmae }}"]}'),
     "--meta-params uses 'nmae', which payment.link_created events do not carry; they provide: amount, event_id"),
    (("--meta-category", "utility", "--meta-params", '{"body": ["{{ name }'),
     "--meta-params is not valid JSON"),
    (("--meta-category", "utility", "--meta-params", '{"footer": ["x"]}'),
     "--meta-params: unknown key(s) footer; use body, header, buttons"),
    (("--meta-category", "utility", "--meta-params", '{"body": ["{{ amount|nosuchfilter }}"]}'),
     "--meta-params fails on sample data: parameter body[0]"),
    (("--meta-params", "{}"), "give --meta-category utility|marketing|authentication"),
])
def test_a_bad_mapping_is_refused_with_one_line_saying_what_to_fix(stack, args: tuple[str, ...], says: str):
    done = run_cli(stack, *MAP, *args)
    assert done.returncode == 1
    assert says in one_error_line(done)
    assert json.loads(stack.cli("templates", "show", "payment_link", "--json"))["meta"] is None


def test_no_meta_with_other_meta_options_is_a_usage_error(stack):
    done = run_cli(stack, "templates", "set", "payment_link", "--no-meta", "--meta-name", "x")
    assert done.returncode == 2 and "--no-meta removes the mapping" in done.stderr


def test_a_mapping_is_saved_shown_previewed_in_both_forms_and_removed(stack):
    saved = json.loads(stack.cli(*MAP, "--meta-category", "utility", "--meta-params", json.dumps(PARAMS), "--json"))
    assert saved["changed"] and saved["meta"]["sample"]["components"][1]["parameters"] == [
        {"type": "text", "text": "i/abc123"}]
    shown = stack.cli("templates", "show", "payment_link")
    assert "approved template payment_link_v2 (id, utility)" in shown
    # preview: the text, then the exact JSON of the text form and of the template form
    preview = json.loads(stack.cli("templates", "preview", "payment_link", "--data",
                                   '{"amount": 2500000, "phone": "0811 4040 707"}', "--json"))
    assert "Rp 2.500.000" in preview["text"]
    assert preview["text_payload"] == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                       "to": "628114040707", "type": "text",
                                       "text": {"preview_url": False, "body": preview["text"]}}
    assert preview["template_payload"]["type"] == "template"
    assert preview["template_payload"]["template"] == {
        "name": "payment_link_v2", "language": {"code": "id"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "2.500.000"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "i/abc123"}]}]}
    printed = stack.cli("templates", "preview", "payment_link")
    assert "inside the 24-hour window (text)" in printed and '"name": "payment_link_v2"' in printed
    # only the parameters change; the name, language and category are kept
    stack.cli("templates", "set", "payment_link", "--meta-params", '{"body": ["{{ name }}", "{{ amount }}"]}')
    assert json.loads(stack.cli("templates", "show", "payment_link", "--json"))["meta"]["name"] == "payment_link_v2"
    assert "meta_name: None -> 'payment_link_v2'" in stack.cli("templates", "history", "payment_link")
    stack.cli("templates", "set", "payment_link", "--no-meta")
    assert "no_approved_template" in stack.cli("templates", "preview", "payment_link")
    assert json.loads(stack.cli("templates", "preview", "payment_link", "--json"))["template_payload"] is None


def test_mapping_a_template_meta_reports_paused_warns_what_will_happen(stack, sessions):
    with transaction(sessions) as session:
        session.add(MetaTemplate(name="payment_link_v2", language="id", status="PAUSED"))
    out = stack.cli(*MAP, "--meta-category", "utility", "--meta-params", json.dumps(PARAMS))
    assert "Meta reports payment_link_v2 (id) as PAUSED" in out and "template_paused" in out


# A template no rule names goes out for notification.requested: its variables are free.
FREE_BODY = "{% if points >= 100 %}VIP {% endif %}Halo {{ name }}"
FREE_PARAMS = {"body": ["{{ 'VIP' if points >= 100 else 'member' }}", "{{ name }}"],
               "buttons": [{"index": 0, "sub_type": "url", "text": "{{ code | urlencode }}"}]}
FREE_MAP = ("templates", "set", "loyalty_code", "--meta-name", "loyalty_code_v1", "--meta-language", "id",
            "--meta-category", "marketing")


@pytest.fixture
def free_template(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    stack.cli("templates", "set", "loyalty_code", "--body", FREE_BODY)
    yield "loyalty_code"
    stack.cli("templates", "delete", "loyalty_code")


def test_free_variable_parameters_are_tried_use_by_use_like_the_body(stack, free_template):
    # one parameter compares a variable with a number, another URL-encodes one: each use gets
    # the placeholder or its text, whichever it takes, as the template's body does
    saved = json.loads(stack.cli(*FREE_MAP, "--meta-params", json.dumps(FREE_PARAMS), "--json"))
    assert saved["meta"]["sample"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "VIP"}, {"type": "text", "text": "<name>"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "%3Ccode%3E"}]}]
    preview = json.loads(stack.cli("templates", "preview", free_template, "--json"))
    assert preview["text"] == "VIP Halo <name>"
    assert preview["template_payload"]["template"]["components"] == saved["meta"]["sample"]["components"]
    # with real values given, they are what renders
    given = json.loads(stack.cli("templates", "preview", free_template, "--data",
                                 '{"points": 50, "name": "Sari", "code": "A B/1"}', "--json"))
    assert given["text"] == "Halo Sari"
    assert given["template_payload"]["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "member"}, {"type": "text", "text": "Sari"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A%20B/1"}]}]


@pytest.mark.parametrize("text", ["{{ 1 / 0 }}", "{{ code | urlencode }}/{{ 1 / 0 }}"])
def test_a_free_variable_parameter_that_fails_whatever_the_values_is_refused_for_that_reason(
        stack, free_template, text: str):
    params = FREE_PARAMS | {"buttons": [{"index": 0, "sub_type": "url", "text": text}]}
    done = run_cli(stack, *FREE_MAP, "--meta-params", json.dumps(params))
    assert done.returncode == 1
    assert ("--meta-params fails on sample data: parameter buttons[0]: template cannot render: "
            "ZeroDivisionError: division by zero") in one_error_line(done)
    assert json.loads(stack.cli("templates", "show", free_template, "--json"))["meta"] is None
