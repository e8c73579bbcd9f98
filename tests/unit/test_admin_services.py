"""The admin services' pure parts: no broker, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from wanotify.ops.admin.dead_letters import DeadFilter, event_templates, parse_age, parse_reason
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.admin.pausing import BY_HAND, current_pause
from wanotify.ops.admin.publishing import TEST_TEMPLATE, TEXT_TEMPLATE, urgent_data
from wanotify.ops.admin.templates import Provided, diff, sample_render
from wanotify.shared.db.models import SenderState
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.templates import render

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_an_event_parked_for_its_template_is_tied_to_its_rules_templates_or_the_one_it_names():
    rules = {"member.registered": ["welcome_new_member", "crm_note"], "notification.requested": [None]}
    assert event_templates(rules, "member.registered", b"{}") == ["welcome_new_member", "crm_note"]
    named = json.dumps({"data": {"template": "promo_x"}}).encode()
    assert event_templates(rules, "notification.requested", named) == ["promo_x"]
    assert event_templates(rules, "notification.requested", b"not json") == []
    assert event_templates(rules, None, named) == []


def test_ages_are_a_number_and_a_unit_and_anything_else_says_how_to_write_one():
    assert parse_age("90s") == timedelta(seconds=90)
    assert parse_age(" 1.5h ") == timedelta(minutes=90)
    with pytest.raises(ValueError, match=r"e\.g\. 45s, 30m, 2h, 7d"):
        parse_age("2 hours")


@pytest.mark.parametrize("real", ["meta_131026", "http_503", "timeout", "receipt_failed", "no_approved_template",
                                  "template_params", "template_paused", "invalid_phone", "template_error"])
def test_a_reason_items_really_get_is_a_filter(real):
    assert parse_reason(real) == real


@pytest.mark.parametrize("bogus", ["bogus", "meta_", "http_abc", "meta_<code>", "Timeout", "meta_\u0661\u0662"])
def test_a_reason_no_item_gets_is_refused_naming_the_known_ones(bogus):
    # an empty list for a typo reads as "nothing is parked"
    with pytest.raises(ValueError, match=r"is not a reason .* invalid_phone, .*meta_<code>"):
        parse_reason(bogus)


def test_the_audit_log_keeps_a_selection_by_its_ids_or_by_the_filters_given():
    assert DeadFilter(ids=("m1", "e2")).target() == {"ids": ["m1", "e2"]}
    chosen = DeadFilter(reason="meta_190", older_than=timedelta(hours=2))
    assert chosen.target() == {"kind": "all", "reason": "meta_190", "older_than_seconds": 7200.0}


def test_a_pause_by_hand_is_told_from_a_quality_pause_and_an_ended_pause_is_none():
    by_hand = SenderState(namespace="n", paused_until=NOW + timedelta(days=36500), pause_reason=f"{BY_HAND} by cli:ana")
    quality = SenderState(namespace="n", paused_until=NOW + timedelta(hours=1), pause_reason="HTTP 400 (#131048)")
    ended = SenderState(namespace="n", paused_until=NOW - timedelta(seconds=1), pause_reason="HTTP 400 (#131048)")
    assert current_pause(by_hand, NOW).as_dict() == {"kind": "by_hand", "until": None, "reason": f"{BY_HAND} by cli:ana"}
    assert current_pause(quality, NOW).as_dict()["kind"] == "quality"  # type: ignore[union-attr]
    assert current_pause(ended, NOW) is None and current_pause(None, NOW) is None


def test_an_urgent_send_is_a_top_priority_requested_notification_of_a_text_a_template_or_the_test():
    text = urgent_data("0811", text="Maintenance at 22:00")
    assert text == {"phone": "0811", "template": TEXT_TEMPLATE, "variables": {"text": "Maintenance at 22:00"},
                    "priority": "high"}
    assert urgent_data("0811", template="payment_link", variables={"name": "Budi"})["variables"] == {"name": "Budi"}
    assert urgent_data("0811")["template"] == TEST_TEMPLATE and "sent_at" in urgent_data("0811")["variables"]
    with pytest.raises(ActionRefused, match="not both"):
        urgent_data("0811", text="hi", template="payment_link")
    with pytest.raises(ActionRefused, match="the text is empty"):
        urgent_data("0811", text="  ")


def test_sample_data_covers_what_the_events_provide_and_placeholders_what_they_do_not_know():
    fixed = Provided(("member.registered",), frozenset({"name", "member_id"}))
    assert fixed.sample("Halo {{ name }}") == {"member_id": "M-1001", "name": "Budi"}
    free = Provided((), None)  # notification.requested: any variable, of any type, but the envelope's
    sample = free.sample("{{ nickname }} {{ amount }} {{ occurred_at }}")
    assert {name: str(value) for name, value in sample.items()} == {
        "amount": "<amount>", "nickname": "<nickname>", "occurred_at": "2026-11-22 10:00:00+00:00"}


@pytest.mark.parametrize(("body", "shown"), [
    ("{% if points >= 100 %}hadiah{% endif %} {{ points + 10 }} {{ 10 * points }}", "hadiah <points> <points>"),
    ("{% for it in items %}{{ it.name }}: {{ it.price | money }}{% endfor %}", "<items.name>: <items.price>"),
    ("{% for k, v in extra.items() %}{{ k }}={{ v }}{% endfor %} {{ extra.get('a') }}", "<extra.key>=<extra.value> <extra.a>"),
    ("{{ due.strftime('%d/%m') }} {{ items | length }} {{ '%d' % points }} {{ code | upper }}", "<due.strftime> 1 1 <CODE>"),
])
def test_a_placeholder_takes_any_use_a_variable_of_unknown_type_may_get(body, shown):
    assert render(body, Provided((), None).sample(body)) == shown


@pytest.mark.parametrize(("body", "shown"), [
    ("{{ extra | tojson }} {{ code | urlencode }}", '"\\u003cextra\\u003e" %3Ccode%3E'),  # what only a text takes
    ('{% if kind == "vip" %}VIP {% endif %}{% if kind != "vip" %}member{% endif %}', "VIP member"),  # both tried
    ("{{ name.upper() }} {{ extra.get('a') }}", "<name.upper> <extra.a>"),  # methods of what the event brings
    # a groupby's group is a tuple whose fields hold the placeholder's members: fields, not methods
    ("{% for g in orders | groupby('status') %}{{ g.grouper }}{% endfor %}", "<orders.status>"),
    ("{{ [1, 2] | sum(start=bonus) }}", "<bonus>"),  # a placeholder adds as a number would
    # a walk over a tree ends: a placeholder eight levels down loops over nothing
    ("{% for node in tree recursive %}{{ node.name }}{% if node.children %}({{ loop(node.children) }}){% endif %}"
     "{% endfor %}", "<tree.name>(<tree.children.name>(<tree.children.children.name>("
                     "<tree.children.children.children.name>())))"),
    ("{% macro show(n) %}{{ n.name }}{% for c in n.children %} {{ show(c) }}{% endfor %}{% endmacro %}{{ show(tree) }}",
     "<tree.name> <tree.children.name> <tree.children.children.name> <tree.children.children.children.name> "
     "<tree.children.children.children.children.name>"),
])
def test_a_free_variable_template_passes_with_whichever_sample_it_renders(body, shown):
    assert sample_render(body, Provided((), None))[0] == shown


@pytest.mark.parametrize(("body", "shown"), [
    ("{% if points >= 100 %}VIP {% endif %}{{ code | urlencode }}", "VIP %3Ccode%3E"),
    ("{% if points > 5 %}{{ points | tojson }}{% endif %} {{ {'a': extra} | tojson }}",
     '"\\u003cpoints\\u003e" {"a": "\\u003cextra\\u003e"}'),
    ('{% if code in "ABC" %}A{% endif %}{% for it in items %} {{ it.name }}{% endfor %}', "<items.name>"),
    ('{{ "a,b,c".split(sep) | length + count }} {{ code is in "xy" }}', "<count> False"),
    ("{{ (n - 1) | urlencode }} {{ (n / 2) | round | int }}", "%3Cn%3E 1"),  # a number is no list of pairs
    # a number where a call needs one, a repeated text or list, a number's test
    ('{{ (n - 1) | tojson }} {{ {(n - 1): "x"} | tojson }} {{ (["-"] * (n - 1)) | join(" ") }}'
     '{% for s in "*" * (n - 1) %}{{ s }}{% endfor %} {{ (n - 1) is number }}', '1 {"1": "x"} <n><n> True'),
])
def test_a_free_variable_takes_in_one_render_a_placeholder_or_a_text_whichever_each_use_needs(body, shown):
    # each variable alone renders with one of the two, no whole set of one kind suits them all
    assert sample_render(body, Provided((), None))[0] == shown


@pytest.mark.parametrize(("body", "shown"), [
    ("{{ note | wordwrap(width) }}", "<\nn\no\nt\ne\n>"),  # the value a text, the width a number (1)
    ("{{ note | truncate(n, end=tail) | wordwrap(width=w) }}", "<\nn\no\nt\ne\n>"),
])
def test_a_filter_whose_value_is_a_text_and_whose_arguments_are_numbers_passes(body, shown):
    assert sample_render(body, Provided((), None))[0] == shown


@pytest.mark.parametrize(("body", "shown"), [
    ("{{ note | striptags }}", "[note]"),  # striptags took <note> for a tag
    ("{% if total | int > 100 %}Bonus besar!{% endif %}", "Bonus besar!"),  # false for 1, true for a large total
    ("{% if total | float >= 99.5 %}Hampir!{% endif %}", "Hampir!"),
])
def test_a_template_empty_only_for_the_first_placeholders_is_tried_with_their_second_look(body, shown):
    assert sample_render(body, Provided((), None))[0] == shown


@pytest.mark.parametrize("body", [
    "{% if false %}{{ note }}{% endif %}",  # empty whatever the values
    "{{ note | striptags | replace(note | striptags, '') }}",
])
def test_a_template_empty_for_both_looks_is_refused_as_empty(body):
    with pytest.raises(InvalidEvent, match="empty message"):
        sample_render(body, Provided((), None))


@pytest.mark.parametrize(("body", "says"), [
    ("{% if points >= 100 %}VIP{% endif %} {{ code | urlencode }} {{ 1 / 0 }}", "division by zero"),
    ('{% if points >= 100 %}VIP{% endif %} {{ "a" + 1 }}', "can only concatenate"),
    ('{% if points >= 100 %}VIP{% endif %} {{ "a,b".split(sep, "x") }}', "cannot be interpreted as an integer"),
    ("{% if points >= 100 %}VIP{% endif %} {{ code | urlencode | center(50000000) }}", "center width"),
    ("{% if points >= 100 %}VIP{% endif %} {{ code | urlencode }} {{ extra.__class__ }}", "unsafe"),
    # what only a number can be is never tried as a text: no value makes these work
    ('{{ "abc".startswith(n - 1) }}', "startswith first arg must be str"),
    ('{% if (n / 2) in "0123" %}yes{% endif %}', "requires string as left operand, not number"),
    # a recursive loop's body is tried use by use, not retried whole at each level
    ("{% for i in x recursive %}{% if loop.depth < 40 %}{{ loop(x) }}{% else %}{{ 1 / 0 }}{% endif %}{% endfor %}",
     "division by zero"),
])
def test_a_template_that_fails_whatever_the_values_is_refused_for_that_reason(body, says):
    with pytest.raises(InvalidEvent, match=says):
        sample_render(body, Provided((), None))


def test_a_trial_looks_through_a_list_held_many_times_over_once():
    # 60,000 values in all, held by three lists: the trial finds the call's error without
    # turning the held lists into texts one reference at a time
    shared = "{% set a = range(100) | list %}{% set b = [a] * 100 %}{% set c = [b] * 6 %}"
    with pytest.raises(InvalidEvent, match="startswith first arg must be str"):
        sample_render(shared + '{{ "a".startswith([c]) }}', Provided((), None))
    # and what it finds within reach still gets its text
    assert sample_render('{{ [[code], [code]] | tojson }}', Provided((), None))[0] == (
        '[["\\u003ccode\\u003e"], ["\\u003ccode\\u003e"]]')


def test_occurred_at_is_tried_as_the_envelope_s_datetime_which_events_get_unless_they_bring_their_own():
    for events in (Provided((), None), Provided(("member.registered",), frozenset({"name", "occurred_at"}))):
        assert sample_render("{{ occurred_at.strftime('%d/%m/%Y') }}", events)[0] == "22/11/2026"
        with pytest.raises(InvalidEvent, match="not subscriptable"):
            sample_render("{{ occurred_at[:10] }}", events)


def test_a_free_variable_called_like_a_function_is_refused_no_json_value_is_callable():
    with pytest.raises(InvalidEvent, match="not callable"):
        sample_render("Halo {{ name() }}", Provided((), None))


@pytest.mark.parametrize(("body", "says"), [
    ("{{ points.__class__ }}", "unsafe"),
    ("{{ points._name }}", "unsafe"),
    ("{% for i in range(points * 100000) %}{% endfor %}{{ range(20000) | list }}", "too large"),
])
def test_a_placeholder_still_meets_the_sandbox_and_the_limits(body, says):
    with pytest.raises(InvalidEvent, match=says):
        render(body, Provided((), None).sample(body))


def test_a_template_change_reads_as_a_diff_of_its_text_and_a_line_per_other_field():
    before = {"body": "Halo {{ name }}", "language": "id", "active": True}
    after = {"body": "Halo {{ name }}!", "language": "id", "active": False}
    assert diff(before, after).splitlines() == [
        "--- before", "+++ after", "@@ -1 +1 @@", "-Halo {{ name }}", "+Halo {{ name }}!", "active: True -> False"]
