"""Template bombs: every render is bounded in time, loop steps, output and value sizes, and a
template that breaks a limit is refused quickly, before it has spent the memory."""

from __future__ import annotations

import json
import random
import time
import tracemalloc

import pytest

from tests.unit.catalog import seeded_catalog
from wanotify.consumers.notifier.planning import plan_event
from wanotify.shared.errors import InvalidEvent
from wanotify.shared.events import build_envelope
from wanotify.shared.template_limits import KEPT_SIZE, MAX_RENDERED_CHARS, Budget, Limits, budget, measure
from wanotify.shared.templates import SAMPLE_VARIABLES, _StrippedLength, render, sample_variables

# Each step keeps the last step's value and a new 65,005-character text in a new one.
_CHAIN = ('{{% set ns = namespace(g=none) %}}{{% set big = "x" * 65000 %}}{{% for i in range(1000) %}}'
          "{{% set ns.g = {} %}}{{% endfor %}}done")
_SHARED = '{% set a = ["x"] * 100 %}{% set b = [a] * 100 %}{% set c = [b] * 100 %}'

# The three bombs of the review, and relatives that reach the same cost by other paths.
BOMBS = {
    "center": ('{{ "x"|center(50000000) }}', "center width 50000000"),
    "tuple repetition": ("{{ (1,)*50000000 }}", "repetition"),
    "nested ranges": ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "range"),
    "str method padding": ('{{ "x".ljust(50000000) }}', "width"),
    "printf width": ('{{ "%50000000d"|format(1) }}', "format width"),
    "printf operator": ('{{ "%.50000000f" % 1 }}', "format width"),
    "str.format": ('{{ "{:>50000000}".format(1) }}', "unsafe"),
    "replace": ('{% set s = "x" * 4000 %}{{ s|replace("x", s) }}', "replacement"),
    "join": ('{% set s = "x" * 4000 %}{{ ([s] * 16)|join(s) }}', "join"),
    "list sum": ("{{ ([[1] * 250] * 250)|sum(start=[]) }}", "numbers only"),
    "text sum": ('{{ (["x" * 1000] * 60)|sum(start="") }}', "numbers only"),
    "doubling by ~": ('{% set a = "x" * 4096 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}'
                      '{% set e = d ~ d %}{% set f = e ~ e %}{{ f|length }}', "too large"),
    "doubling macro": ("{% macro d(x) %}{{ x ~ x }}{% endmacro %}" + "{{ " + "d(" * 20 + '"x"' + ")" * 20 + " }}",
                       "wrote more than"),
    "int bytes": ('{{ (1).to_bytes(500000000, "big") }}', "unsafe"),
    "big power": ("{{ ((10 ** 100) ** 100) ** 100 }}", "bits"),
    "batch fill": ('{{ [1]|batch(50000000, "x")|list }}', "linecount"),
    "lorem ipsum": ("{{ lipsum(100000) }}", "undefined"),
    # Lists that hold one another: cheap to build, each as large as all it holds to print.
    # A repetition counts all its list holds, so these are refused before they are built.
    "shared lists to JSON": (_SHARED + "{% set d = [c] * 10 %}{{ d | tojson | length }}", "a repetition of"),
    "shared lists printed": (_SHARED + "{{ c }}", "a repetition of"),
    # what Jinja writes without the output hook: a filter block's result
    "filter blocks in a loop": ('{% set s = "x" * 65000 %}{% set b %}{% for i in range(1000) %}'
                                '{% filter replace("y", s) %}y{% endfilter %}{% endfor %}{% endset %}{{ b|length }}',
                                "wrote more than"),
    # Jinja's link trimming takes quadratic time in a word's length, in one call
    "a long word made links": ('{{ ("." * 30000 ~ "x.")|urlize|length }}', "too long to look for links in"),
    "many long words made links": ('{{ (("." * 2040 ~ "x. ") * 15)|urlize|length }}', "too long to look for links in"),
    # rounding computes 10 ** precision; stripping a large set outside Latin-1 takes quadratic time
    "round to ten million digits": ("{{ 5|round(-10000000) }}", "precision of"),
    "strip of a large set": ('{{ ("ā" * 65000).lstrip("ă" * 65000 ~ "ā")|length }}', "characters to strip"),
    "trim of a large set": ('{{ ("ā" * 65000)|trim("ă" * 65000 ~ "ā")|length }}', "characters to strip"),
    # each call of a recursive macro keeps new tuples of what it is given
    "recursive macro given many values": ('{% set a = [""] * 65536 %}{% macro m(n) %}{% if n > 0 %}'
                                          "{{ m(n - 1, *varargs) }}{% endif %}{% endmacro %}{{ m(25, *a) }}x",
                                          "what a macro is given"),
    # indent and wordwrap see lines where str.splitlines() does: at \r too
    "indented carriage returns": ('{{ ("\\r" * 60000)|indent(4000, blank=true)|length }}', "an indented text"),
    "wrapped carriage returns": ('{{ ("\\r" * 60000)|wordwrap(1000000, wrapstring="y" * 5000)|length }}',
                                 "a wrapped text"),
    # each text is within the limits, and each {% set %} keeps one: 100 of them, 4 bytes a character
    "many large texts kept": ('{% set s = "😀" * 65000 %}' + "".join(f"{{% set v{i} = s ~ {i} %}}" for i in range(100))
                              + "ok", "characters of values in all"),
    # slices, and texts made inside a list, are made values too
    "many slices kept": ('{% set s = "😀" * 65000 %}' + "".join(f"{{% set v{i} = s[{i}:] %}}" for i in range(100)) + "ok",
                         "characters of values in all"),
    "many partitions kept": ('{% set s = "😀" * 65000 %}'
                             + "".join(f"{{% set v{i} = s.partition(s[0]) %}}" for i in range(100)) + "ok",
                             "characters of values in all"),
    # join's attributes are looked up before the join, and sized with its separator
    "join of attributes": ('{{ (["x"] * 8000)|join("y" * 60000, attribute="0")|length }}', "a join of"),
    # the steps of loop(…) in a recursive loop count like any loop's
    "recursive loop": ("{% for x in range(100) recursive %}{% if loop.depth < 4 %}{{ loop(range(100)) }}{% endif %}"
                       "{% endfor %}ok", "loops ran more than"),
    "concatenated shared lists": ('{% set a = ["x"] * 60000 %}{{ ([a] + [a]) | length }}', "a concatenation of"),
    "shared lists written out": ('{% set a = ["x"] * 60000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}'
                                 "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ c | string | length }}", "in all"),
    "namespace of shared lists": ('{% set a = ["x"] * 60000 %}{% set ns = namespace() %}'
                                  + "".join(f"{{% set ns.{k} = a %}}" for k in "abcdefghij")
                                  + "{{ ns | string | length }}", "in all"),
    # held by a list, a namespace would change unseen after the list was measured
    "namespace held by a list": ('{% set a = ["x"] * 60000 %}{% set ns = namespace() %}{% set l = [ns] * 10 %}'
                                 + "".join(f"{{% set ns.{k} = a %}}" for k in "abcdefghij")
                                 + "{{ l | string | length }}", "cannot be held"),
    "cycler of shared lists": ('{% set a = ["x"] * 60000 %}{% set c = cycler(a, a, a, a, a, a, a, a, a, a) %}'
                               "{{ ([c.items] * 10) | tojson | length }}", "in all"),
    "indented JSON": ("{{ range(10000) | list | tojson(4000) | length }}", "an indented JSON text"),
    "JSON indented by a text": ('{{ (range(10000) | list) | tojson(" " * 60000) | length }}', "tojson indent"),
    "long number printed many times": ('{% set x = ("9" * 4300) | int %}{{ [x] * 65536 }}', "bits"),
    "macro name printed many times": ("{% macro " + "m" * 8000 + "() %}{% endmacro %}{{ ["
                                      + "m" * 8000 + "] * 65536 }}", "a repetition of"),
    "rows filled by batch": ("{% set x = range(10000) | list %}{{ [1] | batch(30000, fill_with=x) | join }}",
                             "in all"),
    "items given one by one": ('{{ range(10000) | map("string") | map("center", 4096) '
                               '| map("replace", " ", "xxxxxxxxxxxxxxxx") | list | length }}', "one by one"),
    "macro given many large values": ('{% set a = ["x"] * 60000 %}{% macro m() %}{{ varargs | length }}{% endmacro %}'
                                      "{{ m(a, a, a, a, a, a, a, a, a, a) }}", "what a macro is given"),
    "named format of a large value": ('{% set a = ["x"] * 60000 %}{{ (("%(a)s" * 4000) % {"a": a}) | length }}',
                                      "a formatted text"),
    "format of many large texts": ('{% set s = "x" * 60000 %}{{ ("%s" * 10) | format(s, s, s, s, s, s, s, s, s, s) '
                                   "| length }}", "a formatted text"),
    "concatenation of large values": ('{% set a = ["x"] * 60000 %}{{ (a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a) '
                                      "| length }}", "~ concatenation"),
    "wrapping many lines": ('{{ ("\n" * 32000) | wordwrap(1000000000, wrapstring="y" * 32000) | length }}',
                            "a wrapped text"),
    "links with long attributes": ('{{ ("www.a.com " * 6500) | urlize(target="t" * 32000, rel="r" * 32000) '
                                   "| length }}", "a text with links"),
    "a decimal with a million digits": ("{{ (((amount ** 100) ** 100) ** 15) | int }}", "decimal number over"),
    "format key with brackets": ('{{ "%(a(b))400000000s" % {"a(b)": "x"} }}', "format width"),
    "generators chained in a namespace": (_CHAIN.format('[ns.g, big ~ i] | map("string")'), "cannot be held"),
    "joiners chained in a namespace": (_CHAIN.format("joiner([ns.g, big ~ i])"), "cannot be held"),
    "generators chained through an argument": (_CHAIN.format("(big ~ i) | batch(1, ns.g)"), "cannot be given"),
    "loops chained in a namespace": ('{% set ns = namespace(g=none) %}{% set big = "x" * 65000 %}'
                                     "{% for i in range(1000) %}{% for x in [ns.g, big ~ i] %}{% set ns.g = loop %}"
                                     "{% endfor %}{% endfor %}done", "cannot be held"),
    "pretty-printing a deep value": ("{% set ns = namespace(a=range(10000) | list) %}{% for i in range(31) %}"
                                     "{% set ns.a = [ns.a] %}{% endfor %}{{ ns.a | pprint | length }}",
                                     "a pretty-printed value"),
    "date format widths": ('{{ occurred_at.strftime("%1500Y" * 1000) | length }}', "a date format"),
    "a decimal divided by a tiny one": ("{% set t = (amount ** -100) ** 100 %}"
                                        "{{ (1 / t / t / t / t / t / t / t / t / t / t / t / t / t / t / t) | int }}",
                                        "decimal number over"),
    "a decimal from a method": ("{{ (1 / amount.scaleb(-999990)) | int }}", "decimal number over"),
    "deep nesting": ("{% set ns = namespace(x=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                     "{{ ns.x | tojson | length }}", "levels deep"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_template_bomb_is_refused_quickly_and_without_spending_memory(name):
    body, says = BOMBS[name]
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(InvalidEvent) as refused:
        render(body, SAMPLE_VARIABLES)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name}: refused in {elapsed * 1000:.1f} ms, peak {peak / 1e6:.1f} MB: {refused.value.detail}")
    assert refused.value.reason == "template_error" and says in refused.value.detail
    assert peak < 20_000_000  # a bound on memory, not on speed


def test_nested_loops_within_the_range_limit_stop_at_the_iteration_cap():
    body = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}done"
    with pytest.raises(InvalidEvent, match="loops ran more than 20000 times"):
        render(body, SAMPLE_VARIABLES)


def test_loops_over_long_strings_count_against_the_iteration_cap_too():
    body = '{% set s = "x" * 4000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}done'
    with pytest.raises(InvalidEvent, match="loops ran more than"):
        render(body, SAMPLE_VARIABLES)


def test_rendering_stops_as_soon_as_the_message_passes_the_whatsapp_limit():
    # Each step writes 10 characters: a render that ran to the end would write 100,000.
    body = "{% for i in range(10000) %}xxxxxxxxxx{% endfor %}"
    with pytest.raises(InvalidEvent, match=f"longer than {MAX_RENDERED_CHARS} characters"):
        render(body, SAMPLE_VARIABLES, Limits(iterations=100_000))


def test_a_message_of_exactly_the_limit_with_surrounding_whitespace_renders():
    body = "\n\n   {{ 'x' * " + str(MAX_RENDERED_CHARS) + " }}   \n\n"
    assert render(body, SAMPLE_VARIABLES) == "x" * MAX_RENDERED_CHARS


def test_output_written_inside_macros_and_set_blocks_is_counted():
    body = "{% set block %}{% for i in range(10000) %}xxxxxxxxxx{% endfor %}{% endset %}{{ block|length }}"
    with pytest.raises(InvalidEvent, match="wrote more than 65536 characters"):
        render(body, SAMPLE_VARIABLES)


def test_a_render_that_takes_too_long_is_stopped_at_the_deadline():
    # Within every size limit, but each step does real work: only the deadline stops it.
    body = ('{% set s = "x" * 60000 %}{% for i in range(10000) %}'
            '{% if s|replace("x", "y")|length > 0 %}{% endif %}{% endfor %}ok')
    with pytest.raises(InvalidEvent, match=r"rendering took longer than 0\.2 s"):
        render(body, SAMPLE_VARIABLES, Limits(seconds=0.2, made_chars=10**12))  # it makes 600 M characters


def test_ordinary_templates_still_render_with_loops_methods_and_filters():
    body = ("Halo {{ name.upper() }}, {{ amount|money }} {% for i in range(3) %}{{ i }}{% endfor %} "
            "{{ ['a', 'b']|join('-') }} {{ '%.1f'|format(2.25) }} {{ name|center(8)|trim }} {{ {'k': 1}.get('k') }}")
    assert render(body, SAMPLE_VARIABLES) == "Halo BUDI, 150.000 012 a-b 2.2 Budi 1"


def test_sample_data_fills_in_names_outside_the_catalogue_so_a_bomb_is_the_only_reason_to_fail():
    body = "Pesan uji ({{ sent_at }}) untuk {{ name }}"
    assert render(body, sample_variables(body)) == "Pesan uji (<sent_at>) untuk Budi"
    with pytest.raises(InvalidEvent, match="center width"):
        render('{{ sent_at|center(50000000) }}', sample_variables("{{ sent_at }}"))


def test_an_event_whose_stored_template_is_a_bomb_is_parked_as_template_error():
    catalog = seeded_catalog(welcome_new_member=BOMBS["nested ranges"][0])
    body = build_envelope("member.registered", {"member_id": "M-1", "name": "Budi", "phone": "08114040707"})
    plan = plan_event(json.dumps(body).encode(), catalog, "ID")
    assert plan.parked is not None and plan.parked.reason == "template_error" and not plan.messages


def test_a_large_list_handed_to_a_filter_on_every_loop_step_is_measured_once():
    # measured on every step, 2,000 steps of 60,000 values would run past the time limit
    body = '{% set a = ["x"] * 60000 %}{% for i in range(2000) %}{% if a | length != 60000 %}no{% endif %}{% endfor %}done'
    assert render(body, SAMPLE_VARIABLES) == "done"


def test_a_value_within_the_limits_prints_and_turns_into_json_as_before():
    shared = '{% set a = ["x"] * 10 %}{% set b = [a] * 10 %}{% set c = [b] * 10 %}'
    assert render(shared + "{{ c | tojson | length }}", SAMPLE_VARIABLES) == str(len(json.dumps([[["x"] * 10] * 10] * 10)))
    assert render("{% set ns = namespace(n=[1, 2]) %}{{ [ns.n, {'k': (3, 4)}] | tojson(2) | length }}",
                  SAMPLE_VARIABLES) == str(len(json.dumps([[1, 2], {"k": [3, 4]}], indent=2)))


def test_a_huge_amount_from_an_event_prints_as_it_came_instead_of_being_written_out():
    tracemalloc.start()
    assert render("{{ total | money }}", {"total": "1e1000000000"}) == "1e1000000000"
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20_000_000  # a billion digits, written out, would be a gigabyte
    assert render("{{ total | money }} {{ nan | money }}", {"total": "150000.5", "nan": "NaN"}) == "150.000,50 NaN"


def test_the_render_forgets_the_measures_it_used_least_recently_first():
    with budget() as b:
        big = ["x"] * 100
        measure(b, big)
        for i in range(2 * KEPT_SIZE // 1000):  # more than is kept
            measure(b, [i] * 1000)
            measure(b, [big])  # big is used on every step
        assert id(big) in b.measured and b.kept_size <= KEPT_SIZE


def test_what_the_render_keeps_measured_does_not_keep_many_large_texts_alive():
    # each step makes a one-item list of a new 65,005-character text, measured and kept
    body = '{% set s = "x" * 65000 %}{% for i in range(9000) %}{% set x = [s ~ i] %}{% endfor %}done'
    tracemalloc.start()
    # no time limit in the way, nor the limit on the texts made (585 M characters)
    assert render(body, SAMPLE_VARIABLES, Limits(seconds=120, made_chars=10**12)) == "done"
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20_000_000  # 9,000 of them kept alive would be 585 MB


def test_the_message_length_counts_chunks_as_strip_would_leave_them():
    # the render's output is checked chunk by chunk, without joining the chunks again each time
    rng = random.Random(7)
    pieces = [" ", "\n", "a", " x ", "", "\t\t", "\u2028"]
    for _ in range(5000):
        chunks = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(0, 8))]
        length = _StrippedLength()
        for i, chunk in enumerate(chunks, 1):
            assert length.add(chunk) == len("".join(chunks[:i]).strip()), chunks[:i]


def test_select_checks_the_deadline_at_every_item_it_tests(monkeypatch):
    # select yields nothing while its test fails: 32,768 tests of "ab" in a 65,536-character
    # text took 6 s in one step before each test checked the deadline
    checks = 0
    check_time = Budget.check_time

    def counted(self: Budget) -> None:
        nonlocal checks
        checks += 1
        check_time(self)

    monkeypatch.setattr(Budget, "check_time", counted)
    assert render('{{ (["ab"] * 1000) | select("in", "xyz") | list | length }}', SAMPLE_VARIABLES) == "0"
    assert checks >= 1000


def test_the_items_of_lists_a_render_makes_count_toward_all_it_makes():
    # each list holds 65,000 new one-character texts, some 5 MB: a few may be kept, not ten
    body = '{% set s = "😀" * 65000 %}' + "".join(f"{{% set v{i} = s | list %}}" for i in range(10)) + "ok"
    tracemalloc.start()
    with pytest.raises(InvalidEvent, match="characters of values in all"):
        render(body, SAMPLE_VARIABLES, Limits(seconds=60))  # no time limit in the way on a slow machine
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20_000_000


def test_a_loop_that_filters_the_event_list_on_every_step_is_not_charged_for_what_it_passes_on():
    # filtering passes the event's own dicts on: a list of them counts its items, not what they hold
    items = [{"sku": f"SKU-{i:04d}", "category": f"c{i % 2}", "note": "x" * 60} for i in range(250)]
    body = ("{% for it in items %}{% set n = items|selectattr('category', 'equalto', it.category)|list|length %}"
            "{% set skus = items|map(attribute='sku')|join(',') %}{% if loop.last %}{{ n }} {{ skus|length }}{% endif %}"
            "{% endfor %}")
    assert render(body, {"items": items}, Limits(seconds=60)) == "125 2249"
