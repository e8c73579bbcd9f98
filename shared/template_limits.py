"""What one template render may cost: time, loop steps, output, and the size of any value.

Admins edit templates while everything runs, and Jinja2's sandbox guards only Python's
internals: ``{{ "x"|center(50000000) }}``, ``{{ (1,)*50000000 }}`` or two nested loops over
``range(100000)`` are legal in it, and one such render would hold the notifier's CPU or
memory. A ``Budget`` lives for one render (in a context variable, so renders in several
threads do not share one). The sandbox (``wanotify.shared.sandbox``) checks it on every loop step,
call, attribute lookup, filter and piece of output, and checks sizes *before* every
operation that can multiply one (repeating, padding, replacing, joining): a check after
the operation would come after the memory is spent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError

MAX_RENDERED_CHARS = 4096  # WhatsApp's limit for a text message body
MAX_TEMPLATE_CHARS = 16_384  # a template longer than four full messages is a mistake


@dataclass(frozen=True)
class Limits:
    seconds: float = 1.0  # a normal message renders in well under a millisecond
    iterations: int = 20_000  # loop steps, all loops of the render together
    range_items: int = 10_000
    value_items: int = 65_536  # characters of a string, items of a list, anywhere in the render
    written_chars: int = 65_536  # everything written, including macro and {% set %} blocks
    width: int = MAX_RENDERED_CHARS  # padding: nothing wider fits in a message
    int_bits: int = 4096  # no amount needs a larger integer


DEFAULT_LIMITS = Limits()


class RenderLimitError(SecurityError):
    """A template asked for more than a render may cost."""


class Budget:
    """The running cost of one render, checked against its limits."""

    __slots__ = ("deadline", "iterations", "limits", "written")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.iterations = 0
        self.written = 0

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
        self.check_items(size_of(value), "a value")
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
