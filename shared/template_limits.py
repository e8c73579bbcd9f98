"""What one template render may cost: time, loop steps, output, and the size of any value.

Admins edit templates while everything runs, and Jinja2's sandbox guards only Python's
internals: ``{{ "x"|center(50000000) }}``, ``{{ (1,)*50000000 }}`` or two nested loops over
``range(100000)`` are legal in it, and one such render would hold the notifier's CPU or
memory. A ``Budget`` lives for one render (in a context variable, so renders in several
threads do not share one). The sandbox (``wanotify.shared.sandbox``) checks it on every loop step,
call, attribute lookup, filter and piece of output, and checks sizes *before* every
operation that can multiply one (repeating, padding, replacing, joining, formatting,
wrapping, making links): a check after the operation would come after the memory is spent.

A value's size counts everything it holds, through its lists and dicts, as often as it holds
it: ``[c] * 100`` of ``[b] * 100`` of ``[a] * 100`` costs little to build (each list holds 100
references) but a million values to print or turn into JSON, which Python does in one call no
deadline can stop. And all a render makes (texts, and the items of its lists and dicts)
counts toward one total: each value within the limits, a thousand ``{% set %}``s could
otherwise keep a thousand of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import Cycler, Joiner, Namespace

MAX_RENDERED_CHARS = 4096  # WhatsApp's limit for a text message body
MAX_TEMPLATE_CHARS = 16_384  # a template longer than four full messages is a mistake


@dataclass(frozen=True)
class Limits:
    seconds: float = 1.0  # a normal message renders in well under a millisecond
    iterations: int = 20_000  # loop steps, all loops of the render together
    range_items: int = 10_000
    value_items: int = 65_536  # characters and items of any value, all it holds counted (``measure``)
    nesting: int = 32  # levels of lists and dicts in one value
    written_chars: int = 65_536  # everything written, including macro and {% set %} blocks
    # All the render makes, together, in characters, each item of a list, tuple or dict it
    # makes counting as ``ITEM_CHARS``: each value may hold 65,536, at 4 bytes a character or
    # 60-80 bytes an item, and a template has room for a thousand {% set %}s that keep one each.
    made_chars: int = 1 << 22
    width: int = MAX_RENDERED_CHARS  # padding: nothing wider fits in a message
    int_bits: int = 4096  # no amount needs a larger integer


DEFAULT_LIMITS = Limits()


class RenderLimitError(SecurityError):
    """A template asked for more than a render may cost."""


class Budget:
    """The running cost of one render, checked against its limits."""

    __slots__ = ("deadline", "iterations", "kept_size", "limits", "made", "measured", "written")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.iterations = 0
        self.written = 0
        self.made = 0
        self.measured: dict[int, tuple[Any, tuple[int, int, int]]] = {}  # see KEPT_SIZE, oldest first
        self.kept_size = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering took longer than {self.limits.seconds:g} s")

    def step(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.iterations:
            raise RenderLimitError(f"loops ran more than {self.limits.iterations} times")
        if self.iterations % 64 == 0:
            self.check_time()

    def wrote(self, chars: int) -> None:
        self.written += chars
        if self.written > self.limits.written_chars:
            raise RenderLimitError(f"the template wrote more than {self.limits.written_chars} characters")
        self.check_time()

    def made_text(self, chars: int) -> None:
        """``chars`` characters' worth of values was made (and may be kept for the rest of the
        render): a text's characters, or a list's items and texts (``made_holder``)."""
        self.made += chars
        if self.made > self.limits.made_chars:
            raise RenderLimitError(f"the template made more than {self.limits.made_chars} characters of values in all "
                                   f"(texts, and {ITEM_CHARS} for each item of a list or dict)")

    def made_holder(self, value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any] | dict[Any, Any]) -> None:
        """A list, tuple, set or dict was made: its items (a dict's keys and values), each
        ``ITEM_CHARS``. What they hold was made before (and counted then), or is the event's; a
        string method's new texts in a list are counted where it is called."""
        self.made_text(ITEM_CHARS * (2 * len(value) if isinstance(value, dict) else len(value)))

    def check_value(self, value: Any) -> Any:
        """``value``, just made by the template (a call's, a filter's or an operator's result, a
        literal), if what it holds in all is within the limits (``measure``); what a filter gives
        one by one is measured as it comes. Every value a render holds was so measured, or is
        one of its variables (an event's, at most ``MAX_EVENT_BYTES``), or a part of one, or a
        macro's ``varargs`` or ``kwargs`` (what it is given is bounded in all when it is called)."""
        if isinstance(value, str | bytes):
            self.check_items(len(value), "a value")
            self.made_text(len(value))
        elif isinstance(value, _HOLDERS):
            _Measuring(self).measured(value, 0)
            if isinstance(value, _MADE_HOLDERS):
                self.made_holder(value)
        elif _is_int(value):
            self._check_bits(value)
        elif isinstance(value, Decimal):
            self._check_decimal(value)
        elif isinstance(value, Iterator):
            return measured_items(self, value)
        return value

    def size(self, value: Any) -> int:
        """The size (``Measure.size``) of a value the template holds or has just made, refused if
        it is over the limits (a number or a decimal by its bits, like ``check_value``)."""
        if isinstance(value, str):
            return len(value)
        if _is_int(value):
            self._check_bits(value)
        elif isinstance(value, Decimal):
            self._check_decimal(value)
        return _Measuring(self).measured(value, 0)[0]

    def _check_decimal(self, number: Decimal) -> None:
        """Cheap to compute ((amount ** 100) ** 100, 1 / amount.scaleb(-999990)) and short to
        print, a decimal with a million digits holds the CPU for seconds when |int or %d
        writes them all out."""
        if number.is_finite() and abs(number.adjusted()) >= _digits(1 << self.limits.int_bits):
            raise RenderLimitError(f"a decimal number over {self.limits.int_bits} bits is too large or too small")

    def _check_bits(self, number: int) -> None:
        if number.bit_length() > self.limits.int_bits:  # |int of a long text; the operators check before
            raise RenderLimitError(f"a number over {self.limits.int_bits} bits is too large")

    def check_given(self, value: Any) -> Any:
        """``value`` as it is given on, printed or joined: a namespace is measured again, as it
        changes; every other value was measured when it was made."""
        if isinstance(value, Namespace):
            measure(self, value)
        elif isinstance(value, Decimal):  # made by a method of a decimal, which the sandbox lets through
            self._check_decimal(value)
        return value

    def kept(self, value: Any, refresh: bool) -> tuple[int, int, int] | None:
        """The kept measure of ``value``, made the most recently used if ``refresh`` (a value
        used itself; one met inside another is not moved, which would cost a move for each
        of a list's items)."""
        found = self.measured.pop(id(value), None) if refresh else self.measured.get(id(value))
        if found is None:
            return None
        if refresh:
            self.measured[id(value)] = found  # the most recently used last
        return found[1]

    def keep(self, value: Any, measured: tuple[int, int, int]) -> None:
        self.measured[id(value)] = (value, measured)
        self.kept_size += measured[0]
        while self.kept_size > KEPT_SIZE:
            _, (size, _, _) = self.measured.pop(next(iter(self.measured)))
            self.kept_size -= size

    def check_items(self, items: int | None, what: str) -> None:
        if items is not None and items > self.limits.value_items:
            raise RenderLimitError(f"{what} of {items} characters or items is too large; "
                                   f"the limit is {self.limits.value_items}")

    def check_width(self, width: Any, what: str) -> None:
        if isinstance(width, int) and width > self.limits.width:
            raise RenderLimitError(f"{what} width {width} is too large; the limit is {self.limits.width}")


_CURRENT: ContextVar[Budget | None] = ContextVar("wanotify_render_budget", default=None)


@contextmanager
def budget(limits: Limits = DEFAULT_LIMITS) -> Iterator[Budget]:
    """A fresh budget for the render inside the ``with`` block."""
    token = _CURRENT.set(Budget(limits))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


def current() -> Budget:
    found = _CURRENT.get()
    if found is None:  # a template rendered other than through shared.templates.render
        raise RenderLimitError("templates render only through shared.templates.render")
    return found


@dataclass(frozen=True)
class Measure:
    size: int  # characters of its texts, items of its lists and dicts, through all it holds (``_digits``)
    items: int  # its lists, dicts and the values in them, through all it holds
    depth: int  # levels of lists and dicts (0 for a text or a number)


# The render keeps the measures of the lists and dicts it met, each with a reference to it (which
# keeps its id its own, and it alive), as long as their sizes add up to at most this; the least
# recently used are forgotten first. A loop that hands the same list, or lists of the same
# event's dicts, on every step looks through each once. What is forgotten was within the
# limits and cannot change.
KEPT_SIZE = 1 << 18


def measure(b: Budget, value: Any) -> Measure:
    """What ``value`` holds in all, counting a list as often as it is held (as printing it or
    turning it into JSON would), refused as soon as it passes the size or nesting limit. Each
    list is looked through once however often it is held, so this costs at most what the
    limit allows."""
    return Measure(*_Measuring(b).measured(value, 0))


_EMPTY: dict[Any, Any] = {}
_ITEMS_VIEW, _KEYS_VIEW, _VALUES_VIEW = type(_EMPTY.items()), type(_EMPTY.keys()), type(_EMPTY.values())
# Concrete types, not the abstract KeysView…: this runs on every value a render makes.
_HOLDERS = (list, tuple, dict, set, frozenset, _KEYS_VIEW, _VALUES_VIEW, _ITEMS_VIEW, Namespace, Cycler)
_ONE = (float, bool, type(None))  # print in a few characters
_MADE_HOLDERS = (list, tuple, set, frozenset, dict)  # what a render makes anew (not a namespace, a view)
ITEM_CHARS = 24  # what an item of a list or dict a render makes counts, in characters (``Limits.made_chars``)
# Values that hold others out of sight (a generator, a loop, a joiner): kept in a list, one
# could hold another, and that one a large text, step after step.
_OPAQUE = (Iterator, Joiner)


def is_opaque(value: Any) -> bool:
    return isinstance(value, _OPAQUE)


def _held(value: Any) -> Iterable[Any]:
    """The values ``value`` (one of ``_HOLDERS``) holds and prints. Jinja's ``namespace()`` and
    ``cycler()`` keep theirs inside, and print or give them all the same."""
    if isinstance(value, list | tuple | set | frozenset | _KEYS_VIEW | _VALUES_VIEW):
        return value
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, _ITEMS_VIEW):
        return [part for pair in value for part in pair]
    if isinstance(value, Namespace):
        attributes = value._Namespace__attrs  # Namespace lets this one name through
        return [*attributes.keys(), *attributes.values()]
    assert isinstance(value, Cycler)
    return value.items


class _Measuring:
    """One ``measure``. Lists, dicts and tuples cannot change (the sandbox lets no template
    change one), so their measures are kept for the render (``Budget.measured``); a namespace
    changes with every ``{% set ns.x = … %}``, so it is measured whenever it is used, and may
    not be held by a list, a dict or another namespace, where it would change unseen."""

    def __init__(self, b: Budget) -> None:
        self.budget = b
        self.seen: dict[int, tuple[int, int, int]] = {}  # this walk's other values, by identity
        self.looked = 0

    def measured(self, value: Any, level: int) -> tuple[int, int, int]:
        """(size, items, depth), as in ``Measure``: plain tuples, as there may be many."""
        if isinstance(value, str | bytes):
            return len(value), 1, 0
        if not isinstance(value, _HOLDERS):
            if level > 0 and isinstance(value, _OPAQUE):
                raise RenderLimitError(f"a {type(value).__name__} cannot be held in a list, a dict or a namespace, "
                                       "where what it holds would go unmeasured; make it a list first")
            return self._printed(value), 1, 0
        if isinstance(value, Namespace) and level > 0:
            raise RenderLimitError("a namespace cannot be held in a list, a dict or another namespace; "
                                   "use its attributes")
        known = self.seen.get(id(value))
        if known is None:
            known = self.budget.kept(value, refresh=level == 0)
        if known is not None:
            self._check_nesting(level + known[2])
            return known
        self._check_nesting(level + 1)
        found = self._add_up(_held(value), level)
        self.seen[id(value)] = found
        if not isinstance(value, Namespace):
            self.budget.keep(value, found)
        return found

    def _add_up(self, held: Iterable[Any], level: int) -> tuple[int, int, int]:
        limit = self.budget.limits.value_items
        size = items = depth = count = 0
        for part in held:  # the hot loop: most values are looked at here, not in a call of their own
            kind = type(part)
            if kind is str:
                size += len(part)
                items += 1
            elif kind is int:
                size += _digits(part)
                items += 1
            else:
                part_size, part_items, part_depth = self.measured(part, level + 1)
                size, items, depth = size + part_size, items + part_items, max(depth, part_depth)
            count += 1
            if size > limit or count > limit:
                raise RenderLimitError(f"a value holding more than {limit} characters or items in all (its "
                                       f"lists, dicts and texts together) is too large")
        self.looked += count
        if self.looked > 1024:  # a thousand values looked at since the deadline was
            self.looked = 0
            self.budget.check_time()
        return max(size, count), items + 1, depth + 1

    def _printed(self, value: Any) -> int:
        """A value that holds none: a number as ``_digits``, anything else (a date, a macro,
        a decimal) the length it prints with, once however often it is held."""
        if isinstance(value, int):
            return _digits(value)
        if isinstance(value, _ONE):
            return 1
        known = self.seen.get(id(value))
        if known is None:
            known = (len(repr(value)), 1, 0)
            self.seen[id(value)] = known
        return known[0]

    def _check_nesting(self, levels: int) -> None:
        limit = self.budget.limits.nesting
        if levels > limit:
            raise RenderLimitError(f"a value nested more than {limit} levels deep is too deep")


def measured_items(b: Budget, items: Iterator[Any]) -> Iterator[Any]:
    """``items`` (what a filter such as ``map`` or ``batch`` gives one by one), each measured as
    it comes, and all of them together within the size limit: collected, they are one value."""
    total = count = 0
    for item in items:
        count += 1
        if count % 256 == 0:  # each item may be cheap, and there may be many
            b.check_time()
        if type(item) is str:  # new (map's filter counted it) or passed on (select): not made here
            total += len(item)
        elif isinstance(item, Iterator):  # batch of a generator…: measured as it comes too
            item = measured_items(b, item)
        else:
            total += b.size(item)
            if isinstance(item, list | tuple):  # a batch or slice's new rows; an event's dicts pass on
                b.made_holder(item)
        b.check_items(total, "what a filter or call gives one by one")
        yield item


def _digits(number: int) -> int:
    """A number counts as one value, like a text of one character, up to 64 bits (20 digits,
    as many as a float prints with), and by its digits above (a bit is 0.301 of a digit)."""
    bits = number.bit_length()
    return 1 if bits <= 64 else (bits * 1233 >> 12) + 1


def _grown_size(b: Budget, value: Any) -> int | None:
    """The size (``Budget.size``) of a value that ``+`` and ``*`` grow, as texts and lists; None
    for a number, which they compute."""
    return b.size(value) if isinstance(value, str | bytes | list | tuple) else None


def check_binop(b: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse an operator whose result would be too large, before it is computed."""
    if operator == "*":
        _check_product(b, left, right)
    elif operator == "**":
        _check_power(b, left, right)
    elif operator == "+":
        sizes = (_grown_size(b, left), _grown_size(b, right))
        if sizes[0] is not None and sizes[1] is not None:
            b.check_items(sizes[0] + sizes[1], "a concatenation")
    elif operator == "%" and isinstance(left, str):
        check_printf(b, left, right)


def _check_product(b: Budget, left: Any, right: Any) -> None:
    for count, seq in ((left, right), (right, left)):
        size = _grown_size(b, seq)
        if isinstance(count, int) and size is not None:
            b.check_items(count * size, "a repetition")
    if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > b.limits.int_bits:
        raise RenderLimitError(f"a product of integers over {b.limits.int_bits} bits is too large")


def _check_power(b: Budget, left: Any, right: Any) -> None:
    if _is_int(right) and abs(right) > 100:
        raise RenderLimitError("an exponent over 100 is too large")
    if _is_int(left) and _is_int(right) and abs(left).bit_length() * abs(right) > b.limits.int_bits:
        raise RenderLimitError(f"a power over {b.limits.int_bits} bits is too large")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What follows a printf-style conversion's %, after its (key): [flags][width][.precision][length]type
_PRINTF_SPEC = re.compile(r"[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _printf_conversions(fmt: str) -> Iterator[tuple[str | None, str | None, str]]:
    """(width, precision, type) of each conversion in ``fmt``, read as Python reads them: a
    key may hold brackets, ``%(a(b))s`` being the key ``a(b)``. What Python may read but this
    cannot is refused, so no width escapes the check."""
    at = fmt.find("%")
    while at >= 0:
        at += 1
        if fmt.startswith("(", at):
            depth, at = 1, at + 1
            while depth and at < len(fmt):
                depth += {"(": 1, ")": -1}.get(fmt[at], 0)
                at += 1
        spec = _PRINTF_SPEC.match(fmt, at)
        if spec is None:
            raise RenderLimitError(f"a format string with an unreadable conversion at character {at}")
        yield spec.group(1), spec.group(2), spec.group()[-1]
        at = fmt.find("%", spec.end())


def check_printf(b: Budget, fmt: str, values: Any) -> None:
    """``"%50000000d" % 1`` builds a 50 MB string, ``("%s" * 4000) % (a, a, …)`` or
    ``("%(a)s" * 4000) % {"a": a}`` a large value 4,000 times: refuse widths and precisions
    that large, and formats whose conversions could print more than a value may hold."""
    conversions = 0
    for width, precision, kind in _printf_conversions(fmt):
        conversions += kind != "%"
        for number in (width, precision):
            if number == "*":
                raise RenderLimitError("a * width or precision in a format string is not allowed")
            if number is not None:
                b.check_width(int(number), "a format")
    if conversions:
        given = values.values() if isinstance(values, dict) else values if isinstance(values, tuple) else (values,)
        largest = max((b.size(value) for value in given), default=0)
        b.check_items(len(fmt) + conversions * largest, "a formatted text")


def replace_size(text: str, old: str, new: str, count: int | None) -> int:
    """How long ``text.replace(old, new, count)`` would be, without building it."""
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def join_size(items: list[Any], separator: str) -> int:
    return sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)
