"""The Jinja2 environment stored templates render in: sandboxed, and bounded by a budget.

Jinja2's immutable sandbox keeps templates away from Python internals and from changing
data. On top of it every render is charged to a ``wanotify.shared.template_limits.Budget``:

- every loop's iterable (a recursive loop's ``loop(…)`` too), every list, tuple and dict
  written in the template, every slice, and every piece of output (literal text and a
  filter block's result included) passes through a guard, and every ``~`` concatenation
  through a join that stops once it is too long, inserted into the parsed template before
  it is compiled;
- every call, attribute lookup, filter and arithmetic operator checks the deadline, and
  refuses results that would be too large before building them where the size can be told
  beforehand (repeating, padding, replacing, joining, formatting, wrapping, links, pretty
  printing, date formats), after otherwise; a word too long for ``urlize``'s quadratic
  trimming is refused; every test that ``select`` or ``reject`` makes checks the deadline;
- a value's size counts everything it holds (``template_limits.measure``), as printing it or
  turning it into JSON builds all of that in one step no deadline can stop: every value made
  (by a call, a filter, an operator, a literal, each item a filter gives one by one) is
  measured as it is made (and counts toward all a render may make, ``Budget.made_text``), what a
  macro is given in all too (its ``varargs``, ``kwargs`` and ``caller`` are made of it), and a
  namespace, which changes, whenever it is given on or printed; what holds values out of
  sight (a generator, a loop, a joiner) may not be held by a list or a namespace, nor given
  to a filter that gives its values later, so none can hide a chain;
- methods of plain data (strings, lists, dicts, dates) are limited to a list of harmless ones;
- nothing is evaluated at compile time (where no budget applies): the optimizer is off, and
  filters and the output hook need the render's context.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from wanotify.shared.template_limits import (
    ITEM_CHARS,
    Budget,
    RenderLimitError,
    check_binop,
    check_printf,
    current,
    is_opaque,
    join_size,
    measure,
    replace_size,
)

LOOP_GUARD = "_wanotify_loop"
VALUE_GUARD = "_wanotify_value"
CONCAT = "_wanotify_concat"
WRITTEN = "_wanotify_written"
MAX_LINKED_WORD = 2048  # characters in a word urlize looks at; a web address is rarely longer
MAX_STRIP_CHARS = 256  # characters strip, lstrip, rstrip and trim may be given to take away
MAX_ROUND_DIGITS = 1234  # round's precision: as many digits as a 4,096-bit number has

_STR_METHODS = frozenset("""
    capitalize casefold center count endswith find index isalnum isalpha isascii isdecimal isdigit
    isidentifier islower isnumeric isprintable isspace istitle isupper join ljust lower lstrip partition
    removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip split splitlines
    startswith strip swapcase title upper zfill""".split())
_SAFE_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, _STR_METHODS),
    (dict, frozenset({"get", "items", "keys", "values"})),
    ((list, tuple), frozenset({"count", "index"})),
    ((datetime.date, datetime.time), frozenset({"strftime", "isoformat", "date", "time", "weekday", "isoweekday"})),
)
# Plain data: a method of these not listed above is refused (int.to_bytes(10**9), str.translate…).
_DATA_TYPES = (str, bytes, int, float, complex, list, tuple, dict, set, frozenset, datetime.date, datetime.time)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    # All of them: each result is measured (a decimal divided by a tiny one has a million digits)
    intercepted_binops = frozenset(["*", "**", "+", "%", "-", "/", "//"])

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         optimized=False, finalize=_written)
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)  # generates any amount of text
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters[LOOP_GUARD] = _guard_loop
        self.filters[VALUE_GUARD] = _guard_value
        self.filters[CONCAT] = _concat
        self.filters[WRITTEN] = _written

    def guarded(self, source: str) -> nodes.Template:
        """Parse a template and insert the budget's guards."""
        tree = self.parse(source)
        result = _Guards().visit(tree)
        assert isinstance(result, nodes.Template)
        return result

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if getattr(value, "__self__", None) is not obj or not isinstance(obj, _DATA_TYPES):
            return True  # not a method of plain data (a field of a groupby's tuple may hold anything)
        return any(isinstance(obj, types) and attr in names for types, names in _SAFE_METHODS)

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format is not in the safe methods: its widths cannot be bounded

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        b = current()
        b.check_time()
        b.check_given(left)
        b.check_given(right)
        check_binop(b, operator, left, right)
        return b.check_value(super().call_binop(context, operator, left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().check_time()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().check_time()
        return super().getitem(obj, argument)

    def call_test(self, name: str, value: Any, args: Any = None, kwargs: Any = None, context: Context | None = None,
                  eval_ctx: Any = None) -> Any:
        # select and reject call a test for every item, and yield none while it fails: each
        # test of a long list in a long text would otherwise run unseen by the deadline
        current().check_time()
        return super().call_test(name, value, args, kwargs, context, eval_ctx)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        b = current()
        b.check_time()
        _check_arguments(b, args, kwargs)
        if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive loop: its steps count too
            args = (_guard_loop(context, args[0]), *args[1:])
        if isinstance(obj, Macro):
            _check_macro_arguments(b, args, kwargs)
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            args = _check_str_method(b, owner, obj.__name__, args, kwargs)
        elif isinstance(owner, datetime.date | datetime.time) and obj.__name__ == "strftime":
            _check_strftime(b, _arg(args, kwargs, 0, "format", ""))
        result = _made_of(b, super().call(context, obj, *args, **kwargs), args, kwargs)
        if isinstance(owner, str) and isinstance(result, list | tuple):  # split, partition…: new texts
            b.made_text(sum(map(len, result)))
        return result


class _Guards(NodeTransformer):
    """Route loops, concatenations and all output through the budget's guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, LOOP_GUARD)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)  # a ~ b ~ c: the parts go to _concat, which joins their texts
        return _filter(nodes.List(node.nodes, lineno=node.lineno), CONCAT)

    # What a template writes as a literal may hold large values many times: [c, c, c].
    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, VALUE_GUARD)

    visit_Dict = visit_List

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return node if node.ctx != "load" else _filter(node, VALUE_GUARD)  # not a target: a, b = …

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        # Jinja compiles a slice to Python's own s[a:b], a new value like any other made
        self.generic_visit(node)
        return _filter(node, VALUE_GUARD) if isinstance(node.arg, nodes.Slice) and node.ctx == "load" else node

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node:
        # Jinja writes a filter block's result without the output hook: counted here, or a loop
        # of blocks that each turn one character into 65,536 would fill a buffer unseen.
        self.generic_visit(node)
        node.filter = _filter(node.filter, WRITTEN)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        # Literal text becomes a constant expression, so it is counted by the output hook too
        # (a loop can repeat it).
        node.nodes = [nodes.Const(n.data, lineno=n.lineno) if isinstance(n, nodes.TemplateData) else n
                      for n in node.nodes]
        return node


def _filter(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


@pass_context
def _written(_context: Context, value: Any) -> str:
    text = str(current().check_given(value))
    current().wrote(len(text))
    return text


@pass_context
def _guard_loop(_context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    b = current()
    for item in iterable:
        b.step()
        yield item


@pass_context
def _guard_value(_context: Context, value: Any) -> Any:
    return current().check_value(value)


@pass_context
def _concat(_context: Context, parts: list[Any]) -> str:
    """``a ~ b ~ …``, stopped as soon as the texts are longer than a value may be: 2,500
    parts that each print 300,000 characters are not joined."""
    b = current()
    texts, size = [], 0
    for part in parts:
        text = str(b.check_given(part))
        size += len(text)
        b.check_items(size, "a ~ concatenation")
        texts.append(text)
    b.made_text(size)
    return "".join(texts)


def _made_of(b: Budget, result: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``result`` of a call or filter given ``args``, measured; one that gives its values later
    (a generator) may hold its arguments, and may not hold one that holds others out of sight:
    ``big | batch(1, fill_with=previous)`` on every step would chain them unmeasured."""
    if is_opaque(result) and any(is_opaque(value) for value in (*args, *kwargs.values())):
        raise RenderLimitError("a generator, a loop or a joiner cannot be given to a filter or call that gives "
                               "its values one by one, except as what it filters; make it a list first")
    return b.check_value(result)


def _check_macro_arguments(b: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A macro's ``varargs``, ``kwargs`` and caller's arguments are made of what it is given, in
    new tuples and dicts on every call (and a recursive macro keeps each call's): what it is
    given counts in all, and each argument toward all the render makes."""
    given = (*args, *kwargs.values())
    b.check_items(len(given) + sum(b.size(value) for value in given), "what a macro is given")
    b.made_text(2 * ITEM_CHARS * len(given))


def _check_strftime(b: Budget, fmt: Any) -> None:
    """``strftime("%1500Y" * 10000)`` pads every conversion as wide as it is told."""
    if isinstance(fmt, str):
        widths = sum(int(width) for width in _STRFTIME_WIDTH.findall(fmt))
        b.check_items(len(fmt) * _STRFTIME_GROWTH + widths, "a date format")


# %c prints 24 characters for 2; a width pads a conversion to it (%10Y); glibc's flags come first.
_STRFTIME_GROWTH = 16
_STRFTIME_WIDTH = re.compile(r"%[-_0^#]*(\d+)")


def _check_arguments(b: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        b.check_given(value)


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    limit = current().limits.range_items
    if len(numbers) > limit:
        raise RenderLimitError(f"range of {len(numbers)} numbers is too large; the limit is {limit}")
    return numbers


def _check_str_method(b: Budget, text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
                      ) -> tuple[Any, ...]:
    """Refuse a string method call whose result would be too large; returns the arguments to
    call it with (a joined iterable is read once, here, so it becomes a list)."""
    if name in ("center", "ljust", "rjust", "zfill"):
        b.check_width(args[0] if args else kwargs.get("width"), f"str.{name}")
    elif name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        count = args[2] if len(args) > 2 else kwargs.get("count")
        b.check_items(replace_size(text, args[0], args[1], count if isinstance(count, int) else None), "a replacement")
    elif name in ("strip", "lstrip", "rstrip") and args:
        _check_strip_chars(args[0])
    elif name == "join" and args:
        items = _bounded_list(b, args[0])
        b.check_items(join_size(items, text), "a join")
        return (items, *args[1:])
    return args


def _bounded_list(b: Budget, iterable: Any) -> list[Any]:
    items = []
    for item in iterable:
        items.append(item)
        if len(items) % 1024 == 0:
            b.check_items(len(items), "a list to join")
            b.check_time()
    return items


# Checks made before a filter runs: (budget, value, args, kwargs) -> (value, args). Filters
# not named here can only shrink or keep the size of what they are given (or are checked
# after they run, which is enough when the growth is a small factor).
Check = Callable[[Budget, Any, tuple[Any, ...], dict[str, Any]], tuple[Any, tuple[Any, ...]]]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _check_strip_chars(chars: Any) -> None:
    """Stripping a set of characters outside Latin-1 looks each of the text's characters up in
    it one by one: 65,000 by 65,000 take seconds in one call."""
    if isinstance(chars, str) and len(chars) > MAX_STRIP_CHARS:
        raise RenderLimitError(f"a set of {len(chars)} characters to strip is too large; the limit is {MAX_STRIP_CHARS}")


def _check_trim(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    _check_strip_chars(_arg(args, kwargs, 0, "chars", None))
    return value, args


def _check_round(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    precision = _arg(args, kwargs, 0, "precision", 0)  # rounding computes 10 ** precision, a huge integer
    if isinstance(precision, int) and abs(precision) > MAX_ROUND_DIGITS:
        raise RenderLimitError(f"round: a precision of {precision} digits is too large; the limit is {MAX_ROUND_DIGITS}")
    return value, args


def _check_center(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    b.check_width(_arg(args, kwargs, 0, "width", 80), "center")
    return value, args


def _check_indent(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    width = _arg(args, kwargs, 0, "width", 4)
    width = len(width) if isinstance(width, str) else width
    b.check_width(width, "indent")
    if isinstance(width, int):
        b.check_items(len(str(value)) + width * _lines(str(value)), "an indented text")
    return value, args


def _check_wordwrap(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    width = _arg(args, kwargs, 0, "width", 79)
    wrapstring = _arg(args, kwargs, 2, "wrapstring", None) or "\n"
    text = str(value)
    lines = _lines(text)  # each line is wrapped on its own, and they are joined by wrapstring
    breaks = len(text) // max(width, 1) + lines if isinstance(width, int) else lines
    b.check_items(len(text) + breaks * len(str(wrapstring)), "a wrapped text")
    return value, args


def _lines(text: str) -> int:
    r"""The lines Jinja's indent and wordwrap see: str.splitlines() breaks at \r, \x0b, \u2028… too."""
    return len(text.splitlines()) + 1


@cache
def _lookups() -> BoundedEnvironment:
    """An environment for the lookups a check makes ahead of a filter, as the filter would."""
    return BoundedEnvironment()


def _check_replace(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    old, new = str(_arg(args, kwargs, 0, "old", "")), str(_arg(args, kwargs, 1, "new", ""))
    count = _arg(args, kwargs, 2, "count", None)
    b.check_items(replace_size(str(value), old, new, count if isinstance(count, int) else None), "a replacement")
    return value, args


def _check_join(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    items = _bounded_list(b, value)
    attribute = _arg(args, kwargs, 1, "attribute", None)
    if attribute is not None:  # joined are the items' attributes: looked up here, so they are sized too
        getter = make_attrgetter(_lookups(), attribute)
        items = [getter(item) for item in items]
        args = args[:1]
        kwargs.pop("attribute", None)
    b.check_items(join_size(items, str(_arg(args, kwargs, 0, "d", ""))), "a join")
    return items, args


def _check_sum(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    # Adding lists or texts one by one takes quadratic time. What else a render holds either
    # adds as a number (a number, or a template check's stand-in for one) or fails at once.
    if isinstance(_arg(args, kwargs, 1, "start", 0), str | bytes | list | tuple):
        raise RenderLimitError("sum adds numbers only")
    return value, args


def _check_count(index: int, name: str) -> Check:
    def check(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        count = _arg(args, kwargs, index, name, 1)
        if isinstance(count, int):
            b.check_items(count, name)
        return value, args
    return check


def _check_format(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    check_printf(b, str(value), kwargs or args)  # the filter formats with kwargs if it has any
    return value, args


def _check_urlize(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    text = str(value)
    attributes = sum(len(str(_arg(args, kwargs, i, name, "") or "")) for i, name in ((2, "target"), (3, "rel")))
    # each word may become a link: the address twice, the attributes and the markup around them
    words = text.split()
    b.check_items(2 * len(text) + len(words) * (attributes + 64), "a text with links")
    # Jinja trims a word's trailing punctuation with a regular expression that takes time growing
    # with the square of the word's length, in one call: 30,000 dots before "x." take 17 s, and
    # 15 words of 2,040 dots 1.2 s. No web address is that long.
    if sum(len(word) ** 2 for word in words) > MAX_LINKED_WORD ** 2:
        longest = max(map(len, words))
        raise RenderLimitError(f"urlize: words this long (the longest has {longest} characters) take too long to "
                               f"look for links in; a word may have {MAX_LINKED_WORD}, fewer when there are several "
                               "long ones")
    return value, args


def _check_pprint(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    held = measure(b, value)  # pprint prints each level again to see whether it fits a line
    b.check_items(held.size * (held.depth + 1), "a pretty-printed value")
    return value, args


def _check_tojson(b: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    indent = _arg(args, kwargs, 0, "indent", None)
    indent = len(indent) if isinstance(indent, str) else indent  # json takes a text as the indent too
    b.check_width(indent, "tojson indent")
    if isinstance(indent, int) and indent > 0:  # each value on a line of its own, indented once per level
        held = measure(b, value)
        b.check_items(held.size + held.items * (indent * held.depth + 1), "an indented JSON text")
    return value, args


_CHECKS: dict[str, Check] = {
    "center": _check_center, "indent": _check_indent, "wordwrap": _check_wordwrap, "replace": _check_replace,
    "join": _check_join, "sum": _check_sum, "batch": _check_count(0, "linecount"), "slice": _check_count(0, "slices"),
    "format": _check_format, "tojson": _check_tojson, "urlize": _check_urlize, "pprint": _check_pprint,
    "trim": _check_trim, "round": _check_round,
}
_PASS = {"context": lambda c: c, "eval_context": lambda c: c.eval_ctx, "environment": lambda c: c.environment}


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` charged to the budget: deadline, size checks before (``_CHECKS``) and after."""
    passed = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    check = _CHECKS.get(name)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        b = current()
        b.check_time()
        b.check_given(value)
        _check_arguments(b, args, kwargs)
        if check is not None:
            value, args = check(b, value, args, kwargs)
        extra = (_PASS[passed](context),) if passed else ()
        return _made_of(b, func(*extra, value, *args, **kwargs), args, kwargs)

    bounded.__name__ = getattr(func, "__name__", name)
    return bounded
