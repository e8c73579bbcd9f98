"""What one template render may cost: time, loop steps, output, and the size of any value.

Admins edit templates while everything runs, and Jinja2's sandbox guards only Python's
internals: ``{{ "x"|center(50000000) }}``, ``{{ (1,)*50000000 }}`` or two nested loops over
``range(100000)`` are legal in it, and one such render would hold the notifier's CPU or
memory. A ``Budget`` lives for one render (in a context variable, so renders in several
threads do not share one). The sandbox (``wanotify.shared.sandbox``) checks it on every loop step,
call, attribute lookup, filter and piece of output, and checks sizes *before* every
operation that can multiply one (repeating, padding, replacing, joining): a check after
the operation would come after the memory is spent.

A value's size counts everything it holds, through its lists and dicts, as often as it holds
it: ``[c] * 100`` of ``[b] * 100`` of ``[a] * 100`` costs little to build (each list holds 100
references) but a million values to print or turn into JSON, which Python does in one call no
deadline can stop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import Cycler, Namespace

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
    width: int = MAX_RENDERED_CHARS  # padding: nothing wider fits in a message
    int_bits: int = 4096  # no amount needs a larger integer


DEFAULT_LIMITS = Limits()


class RenderLimitError(SecurityError):
    """A template asked for more than a render may cost."""


class Budget:
    """The running cost of one render, checked against its limits."""

    __slots__ = ("deadline", "iterations", "limits", "measured", "written")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.iterations = 0
        self.written = 0
        # The last values measured (``measure``), each with a reference that keeps its id its own:
        # a loop that hands the same list to a filter on every step measures it once.
        self.measured: dict[int, tuple[Any, tuple[int, int, int]]] = {}

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

    def check_value(self, value: Any) -> Any:
        """``value``, if what it holds in all is within the limits (``measure``)."""
        if isinstance(value, str | bytes):
            self.check_items(len(value), "a value")
        elif isinstance(value, _HOLDERS):
            _measure(self, value)
        return value

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
    size: int  # characters of its texts and items of its lists and dicts, through all it holds
    items: int  # the values it holds, through all its lists and dicts
    depth: int  # levels of lists and dicts (0 for a text or a number)


MEASURES_KEPT = 32  # per render


def measure(b: Budget, value: Any) -> Measure:
    """What ``value`` holds in all, counting a list as often as it is held (as printing it or
    turning it into JSON would); refused as soon as it passes the size or nesting limit. Each
    list is looked through once however often it is held, so this costs at most what the
    limit allows, and the render's last few measures are kept."""
    return Measure(*_measure(b, value))


def _measure(b: Budget, value: Any) -> tuple[int, int, int]:
    kept = b.measured.get(id(value))
    if kept is not None:
        return kept[1]
    measuring = _Measuring(b)
    found = measuring.measured(value, 0)
    if isinstance(value, _HOLDERS) and not measuring.changeable:
        if len(b.measured) >= MEASURES_KEPT:
            del b.measured[next(iter(b.measured))]
        b.measured[id(value)] = (value, found)
    return found


_EMPTY: dict[Any, Any] = {}
_ITEMS_VIEW, _KEYS_VIEW, _VALUES_VIEW = type(_EMPTY.items()), type(_EMPTY.keys()), type(_EMPTY.values())
# Concrete types, not the abstract KeysView…: this runs on every value a render makes.
_HOLDERS = (list, tuple, dict, set, frozenset, _KEYS_VIEW, _VALUES_VIEW, _ITEMS_VIEW, Namespace, Cycler)


def _held(value: Any) -> Iterable[Any] | None:
    """The values ``value`` holds and prints, or None for a value that holds none. Jinja's
    ``namespace()`` and ``cycler()`` keep theirs inside, and print or give them all the same."""
    if isinstance(value, str | bytes):
        return None
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, _ITEMS_VIEW):
        return [part for pair in value for part in pair]
    if isinstance(value, list | tuple | set | frozenset | _KEYS_VIEW | _VALUES_VIEW):
        return value
    if isinstance(value, Namespace):
        attributes = value._Namespace__attrs  # Namespace lets this one name through
        return [*attributes.keys(), *attributes.values()]
    if isinstance(value, Cycler):
        return value.items
    return None


class _Measuring:
    """One ``measure``: lists already measured are remembered by identity (the sandbox lets no
    template change a list, a dict or a tuple; only a namespace changes)."""

    def __init__(self, b: Budget) -> None:
        self.budget = b
        self.seen: dict[int, tuple[int, int, int]] = {}
        self.looked = 0
        self.changeable = False  # whether it holds a namespace, which ``{% set ns.x = … %}`` changes

    def measured(self, value: Any, level: int) -> tuple[int, int, int]:
        """(size, items, depth), as in ``Measure``: plain tuples, as there may be many."""
        if isinstance(value, str | bytes):
            return len(value), 1, 0
        held = _held(value)
        if held is None:
            return 1, 1, 0
        self.changeable = self.changeable or isinstance(value, Namespace)
        known = self.seen.get(id(value))
        if known is None and (kept := self.budget.measured.get(id(value))) is not None:
            known = kept[1]
        if known is not None:
            self._check_nesting(level + known[2])
            return known
        self._check_nesting(level + 1)
        size = items = depth = count = 0
        for part in held:
            part_size, part_items, part_depth = self.measured(part, level + 1)
            size, items, depth, count = size + part_size, items + part_items, max(depth, part_depth), count + 1
            self._check(max(size, count))
        found = max(size, count), items + 1, depth + 1
        self.seen[id(value)] = found
        return found

    def _check_nesting(self, levels: int) -> None:
        limit = self.budget.limits.nesting
        if levels > limit:
            raise RenderLimitError(f"a value nested more than {limit} levels deep is too deep")

    def _check(self, size: int) -> None:
        limit = self.budget.limits.value_items
        if size > limit:
            raise RenderLimitError(f"a value holding more than {limit} characters or items in all (its lists, "
                                   f"dicts and texts together) is too large")
        self.looked += 1
        if self.looked % 1024 == 0:
            self.budget.check_time()


def size_of(value: Any) -> int | None:
    """How many characters or items a value holds, for the values that can grow."""
    return len(value) if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) else None


def check_binop(b: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse an operator whose result would be too large, before it is computed."""
    if operator == "*":
        _check_product(b, left, right)
    elif operator == "**":
        _check_power(b, left, right)
    elif operator == "+":
        sizes = (size_of(left), size_of(right))
        if sizes[0] is not None and sizes[1] is not None:
            b.check_items(sizes[0] + sizes[1], "a concatenation")
    elif operator == "%" and isinstance(left, str):
        check_printf(b, left)


def _check_product(b: Budget, left: Any, right: Any) -> None:
    for count, seq in ((left, right), (right, left)):
        size = size_of(seq)
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


# printf-style conversions: %[(name)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def check_printf(b: Budget, fmt: str) -> None:
    """``"%50000000d" % 1`` builds a 50 MB string: refuse widths and precisions that large."""
    for match in _PRINTF.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise RenderLimitError("a * width or precision in a format string is not allowed")
            if number is not None:
                b.check_width(int(number), "a format")


def replace_size(text: str, old: str, new: str, count: int | None) -> int:
    """How long ``text.replace(old, new, count)`` would be, without building it."""
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def join_size(items: list[Any], separator: str) -> int:
    return sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)
