"""Rendering stored templates safely.

Templates are edited by admins at run time, so they render in Jinja2's sandbox (no access to
Python internals) with ``StrictUndefined`` (a missing variable is an error, never an empty
gap in a customer's message), within limits on time, loop steps and sizes
(``wanotify.shared.sandbox``, ``wanotify.shared.template_limits``), so a careless or hostile template costs
one parked event, not the notifier.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial, wraps
from typing import Any

from jinja2 import Template, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import BlockReference, Context, LoopContext, Macro
from jinja2.visitor import NodeTransformer

from wanotify.shared.errors import InvalidEvent
from wanotify.shared.sandbox import BoundedEnvironment, bounded_filter
from wanotify.shared.template_limits import (
    DEFAULT_LIMITS,
    MAX_RENDERED_CHARS,
    MAX_TEMPLATE_CHARS,
    Limits,
    RenderLimitError,
    budget,
)

__all__ = ["MAX_RENDERED_CHARS", "SAMPLE_VARIABLES", "Placeholder", "check_syntax", "environment", "money", "render",
           "sample_variables", "trial_render"]

SAMPLE_VARIABLES: dict[str, Any] = {
    "member_id": "M-1001",
    "name": "Budi",
    "phone": "+628114040707",
    "amount": Decimal("150000"),
    "payment_url": "https://pay.example.com/i/abc123",
    "withdrawal_id": "W-2001",
    "reason": "rekening tidak sesuai",
    "event_id": "6f1c2d3e-8a9b-4c5d-9e0f-112233445566",
    # A real event's occurred_at is a timezone-aware datetime (``Event.variables``), so a sample
    # string would accept `[:10]` that fails on every event and refuse `.strftime()` that works.
    # Approved-template parameters get it as an ISO 8601 string, there and here alike
    # (``meta_templates.stored_variables``).
    "occurred_at": datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
}


_MAX_NAME_CHARS = 200
# Members and items of members…: a placeholder this many levels below its variable loops over
# nothing, so a template that walks a tree (a recursive loop or macro) ends on placeholders.
_MAX_PLACEHOLDER_DEPTH = 8
# What a placeholder is as a number in the second trial: past the thresholds templates test
# (``total | int > 100``), within every size limit.
_SECOND_LOOK_NUMBER = 1_000_000


class Placeholder:
    """The stand-in for a variable whose type nobody knows before an event brings it: those of
    ``notification.requested``, which carry any variables. Whatever a template does with it
    works and prints ``<name>``: compare it (true), compute with it (itself; a number after
    ``-``, ``/``, ``**`` and the like), loop over it (one item; none eight levels below the
    variable, so a walk over a tree ends), read its attributes and items and call its methods
    (``<name.attr>``), filter it. What needs a text instead (a JSON
    filter, a URL encoder, ``in "…"``, a string method's argument) gets its text in a trial
    render (``trial_render``). A trial render with placeholders so refuses what fails whatever
    the values are: a sandbox violation, a literal misused, a loop or size limit. (It also
    refuses a call that needs a number in one argument and a text in another, such as
    ``"abc".center(width, fill)``: a try gives its placeholders one kind, except the one that
    gives a filter's value its text and the arguments numbers.) It is not a
    ``str``, whose own methods the sandbox would check instead."""

    __slots__ = ("_depth", "_name", "_second")

    def __init__(self, name: str, depth: int = 0, *, second: bool = False) -> None:
        self._name = name[:_MAX_NAME_CHARS]  # cut: a name made in a loop (ns.p = ns.p[key]) grows on every step
        self._depth = depth  # levels below the variable (``_MAX_PLACEHOLDER_DEPTH``)
        self._second = second  # the second look's stand-in (``second_look``)

    def _as(self, kind: type[Placeholder], suffix: str = "", below: int = 0) -> Placeholder:
        """A stand-in of ``kind`` made from this one: ``below`` levels further down, named with ``suffix``."""
        return kind(self._name + suffix, self._depth + below, second=self._second)

    def _below(self, suffix: str = "", kind: type[Placeholder] | None = None) -> Placeholder:
        """A member or item of this placeholder, one level further down."""
        return self._as(kind or Placeholder, suffix, 1)

    def second_look(self) -> Placeholder:
        """This stand-in for a second trial, when the first rendered an empty message: it
        prints ``[name]`` (``striptags`` takes ``<name>`` for a tag) and is a large number
        (``{% if total | int > 100 %}``)."""
        return type(self)(self._name, self._depth, second=True)

    def __str__(self) -> str:
        return f"[{self._name}]" if self._second else f"<{self._name}>"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self)

    # Jinja reads ``x.attr`` as ``x["attr"]`` when there is no such attribute, and Python's own
    # probes (``__html__``, ``jinja_pass_arg``…) still find nothing: no __getattr__ here.
    def __getitem__(self, key: Any) -> Placeholder:
        return self._below(f".{key}" if isinstance(key, str) else "", _Member)

    def __iter__(self) -> Iterator[Placeholder]:
        if self._depth < _MAX_PLACEHOLDER_DEPTH:
            yield self._below()  # one item, so a loop's body is tried

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __contains__(self, _item: Any) -> bool:
        return True

    def __int__(self) -> int:
        return _SECOND_LOOK_NUMBER if self._second else 1

    __index__ = __int__

    def __float__(self) -> float:
        return float(int(self))

    def __round__(self, _digits: int | None = None) -> Placeholder:
        return self._as(_Number)

    def items(self) -> list[tuple[Placeholder, Placeholder]]:
        return [(self._below(".key"), self._below(".value"))] if self._depth < _MAX_PLACEHOLDER_DEPTH else []

    def keys(self) -> list[Placeholder]:
        return [pair[0] for pair in self.items()]

    def values(self) -> list[Placeholder]:
        return [pair[1] for pair in self.items()]

    def get(self, key: Any, _default: Any = None) -> Placeholder:
        return self[key]

    def _true(self, _other: Any) -> bool:
        return True

    def _same(self, *_other: Any) -> Placeholder:
        return self

    def _number(self, *_other: Any) -> Placeholder:
        return self._as(_Number)

    def _times(self, other: Any) -> Placeholder:
        """``"-" * n`` and ``[x] * n`` repeat a text or a list, whatever ``n`` is."""
        return self._as(Placeholder) if isinstance(other, str | list | tuple) else self

    # Every comparison holds, so the branch it guards is tried too (``{% if x == "vip" %}``).
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _true

    def __hash__(self) -> int:
        return hash(self._name)
    # Text too has + (joined), * (repeated) and % (formatted): their result may be a text.
    __add__ = __radd__ = __mod__ = __rmod__ = _same
    __mul__ = __rmul__ = _times
    __sub__ = __rsub__ = __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _number
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _number


class _Number(Placeholder):
    """What arithmetic only numbers have makes of a placeholder (``n - 1``, ``n / 2``): a number
    whatever the value, so a trial render never tries it as a text (a retry gives it the number
    1), nor loops over it."""

    __slots__ = ()
    __iter__ = None  # type: ignore[assignment]


_Number.__name__ = "number"  # what a refusal calls it: "'in <string>' requires string as left operand, not number"
numbers.Number.register(_Number)  # {% if x is number %}


class _Member(Placeholder):
    """An attribute or item of a placeholder, which may be a method (``{{ name.upper() }}``):
    it may be called. A variable itself may not: no JSON value is callable."""

    __slots__ = ()

    def __call__(self, *_args: Any, **_kwargs: Any) -> Placeholder:
        return self._as(Placeholder)


# An amount with more than 31 whole digits (Decimal.adjusted() over 30) is no amount: written
# out, the 12 characters 1e1000000000 are a billion digits.
MONEY_DIGITS = 30


def money(value: Any) -> str:
    """``150000`` -> ``150.000`` (Indonesian thousands separator, decimals only if present)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite() or number.adjusted() > MONEY_DIGITS:  # NaN, or "1e1000000000" from an event
        return str(value)
    whole, _, frac = f"{number:,.2f}".partition(".")
    whole = whole.replace(",", ".")
    return whole if frac == "00" else f"{whole},{frac}"


def _add_own_filters(env: BoundedEnvironment) -> BoundedEnvironment:
    env.filters["money"] = bounded_filter("money", money)
    return env


@lru_cache(maxsize=1)
def _environment() -> BoundedEnvironment:
    return _add_own_filters(BoundedEnvironment())


def environment() -> BoundedEnvironment:
    """The environment stored templates render in: its filters, tests and globals are all a
    template may use (checked before a template is saved)."""
    return _environment()


@lru_cache(maxsize=512)
def _compile(body: str) -> Template:
    return _compile_in(_environment(), body)


def _compile_in(env: BoundedEnvironment, body: str) -> Template:
    return env.from_string(env.guarded(body))


_TEXT_CONTAINER = "_wanotify_text_container"
# How far a trial render looks into one call's arguments for placeholders to turn into texts:
# this many levels of lists and dicts, and this many values in all. A template's lists may hold
# one another many times over (``[b] * 100`` of ``[a] * 100``…): a walk that followed every
# reference would look at each list as often as it is held.
_MAX_TEXT_DEPTH = 20
_MAX_TEXT_VALUES = 10_000


class _TrialEnvironment(BoundedEnvironment):
    """The stored templates' environment for trying a template on placeholders: each use of a
    placeholder that it cannot take (a filter, a test or a call that fails with it, ``in`` a
    text) is tried again with its text, so one render tries every use with a value that suits
    it: ``{% if points >= 100 %}`` with the placeholder, ``{{ code | urlencode }}`` with the
    text. What fails with the text too is refused."""

    def __init__(self) -> None:
        super().__init__()
        _add_own_filters(self)
        self.filters = {name: f if name.startswith("_wanotify") else _per_use(f) for name, f in self.filters.items()}
        self.filters[_TEXT_CONTAINER] = _text_container
        self.tests = {name: _per_use(t) for name, t in self.tests.items()}

    def guarded(self, source: str) -> nodes.Template:
        result = _TextContainers().visit(super().guarded(source))
        assert isinstance(result, nodes.Template)
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, Macro | LoopContext | BlockReference):  # their bodies' uses are tried one by one
            return super().call(context, obj, *args, **kwargs)
        return _tried(partial(super().call, context, obj), (), args, kwargs)


def _per_use(func: Any) -> Any:
    """``func`` (a filter or test) tried again with texts for placeholders if it fails with them."""
    lead = 1 if hasattr(func, "jinja_pass_arg") else 0  # the context or environment Jinja passes

    @wraps(func)  # keeps jinja_pass_arg
    def per_use(*args: Any, **kwargs: Any) -> Any:
        return _tried(func, args[:lead], args[lead:], kwargs)

    return per_use


def _tried(func: Callable[..., Any], lead: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func`` with the placeholders as they are; failing that, as texts; failing that too, the
    first argument (a filter's value) as a text and the others as numbers (``note | wordwrap(width)``).
    The texts' failure is the one reported."""
    try:
        return func(*lead, *args, **kwargs)
    except SecurityError:
        raise  # the sandbox and the limits (RenderLimitError) refuse whatever the values
    except Exception:
        swap = _TextSwap()
        texts, text_kwargs = swap.texts(args), swap.texts(kwargs)
        if texts is args and text_kwargs is kwargs:
            raise  # no placeholder in it: it fails whatever the variables are
    try:
        return func(*lead, *texts, **text_kwargs)
    except SecurityError:
        raise
    except Exception:
        swap = _TextSwap(numbers=True)
        numbers, number_kwargs = (*texts[:1], *swap.texts(args[1:])), swap.texts(kwargs)
        try:
            return func(*lead, *numbers, **number_kwargs)
        except SecurityError:
            raise
        except Exception:  # noqa: BLE001 - the texts' failure says more: raised below
            pass
        raise


class _TextSwap:
    """The arguments of one call with the placeholders in them (and in their lists and dicts, as
    far as ``_MAX_TEXT_DEPTH`` and ``_MAX_TEXT_VALUES`` reach) replaced by their texts, and a
    number stand-in by its number (every one by its number with ``numbers``); each value itself
    when it holds none. A list held many times over is looked through once."""

    def __init__(self, *, numbers: bool = False) -> None:
        self._numbers = numbers
        self._left = _MAX_TEXT_VALUES
        self._seen: dict[int, Any] = {}  # id of a list, tuple or dict -> what it became

    def texts(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, Placeholder):
            return int(value) if self._numbers or isinstance(value, _Number) else str(value)
        if not isinstance(value, list | tuple | dict) or depth >= _MAX_TEXT_DEPTH:
            return value
        if id(value) not in self._seen:
            self._seen[id(value)] = value  # as it is while being looked through, and if too large to be
            self._left -= len(value)
            if self._left >= 0:
                self._seen[id(value)] = self._swapped(value, depth + 1)
        return self._seen[id(value)]

    def _swapped(self, value: list[Any] | tuple[Any, ...] | dict[Any, Any], depth: int) -> Any:
        if isinstance(value, dict):
            pairs = [(self.texts(k, depth), self.texts(v, depth)) for k, v in value.items()]
            same = all(k is old_k and v is old_v for (k, v), (old_k, old_v) in zip(pairs, value.items(), strict=True))
            return value if same else dict(pairs)
        items = [self.texts(item, depth) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)


class _Text(str):
    """A text a placeholder may be looked for in (``code in "ABC"``): by its text."""

    __slots__ = ()

    def __contains__(self, item: object) -> bool:
        as_text = isinstance(item, Placeholder) and not isinstance(item, _Number)
        return str.__contains__(self, str(item) if as_text else item)  # type: ignore[operator]


def _text_container(value: Any) -> Any:
    return _Text(value) if type(value) is str else value


class _TextContainers(NodeTransformer):
    """Route what ``in`` and ``not in`` look in through ``_text_container``."""

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        for operand in node.ops:
            if operand.op in ("in", "notin"):
                operand.expr = nodes.Filter(operand.expr, _TEXT_CONTAINER, [], [], None, None, lineno=operand.lineno)
        return node


@lru_cache(maxsize=1)
def _trial_environment() -> _TrialEnvironment:
    return _TrialEnvironment()


@lru_cache(maxsize=128)
def _trial_compile(body: str) -> Template:
    return _compile_in(_trial_environment(), body)


def render(body: str, variables: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> str:
    """Render a template body or raise ``InvalidEvent('template_error', ...)``.

    The render is bounded by ``limits`` (time, loop steps, sizes: see ``wanotify.shared.template_limits``)
    and stops as soon as the message passes ``MAX_RENDERED_CHARS``.
    """
    return _render(_compile, body, variables, limits)


def trial_render(body: str, variables: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> str:
    """``render`` for trying a template on sample data that holds ``Placeholder``s: a use of a
    placeholder that it cannot take gets its text instead (``_TrialEnvironment``), so a
    template is refused for what fails whatever each variable's value is (and for one call that
    needs a number and a text at once: see ``Placeholder``). Not for real
    events: their values are what they are.

    A message that comes out empty may owe it to the placeholders (``{{ note | striptags }}``
    strips ``<note>``; ``{% if total | int > 100 %}`` is false for 1): it is tried once more
    with their second look (``Placeholder.second_look``), and refused only if that fails too."""
    try:
        return _render(_trial_compile, body, variables, limits)
    except _EmptyMessage:
        second = {name: value.second_look() if isinstance(value, Placeholder) else value
                  for name, value in variables.items()}
        if all(value is variables[name] for name, value in second.items()):
            raise
        try:
            return _render(_trial_compile, body, second, limits)
        except InvalidEvent:
            pass
        raise


class _EmptyMessage(InvalidEvent):
    def __init__(self) -> None:
        super().__init__("template_error", "template rendered an empty message")


def _render(compile_body: Callable[[str], Template], body: str, variables: dict[str, Any], limits: Limits) -> str:
    _check_length(body)
    try:
        template = compile_body(body)
        with budget(limits):
            text = _collect(template.generate(**variables))
    except TemplateError as exc:
        raise InvalidEvent("template_error", f"template cannot render: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a broken admin template must never crash a consumer
        raise InvalidEvent("template_error", f"template cannot render: {type(exc).__name__}: {exc}") from None
    if not text:
        raise _EmptyMessage
    return text


def _collect(chunks: Iterator[str]) -> str:
    """Join the output, stopping once it is longer than a message may be (leading and
    trailing whitespace do not count: they are stripped)."""
    parts: list[str] = []
    length = _StrippedLength()
    try:
        for chunk in chunks:
            parts.append(chunk)
            if length.add(chunk) > MAX_RENDERED_CHARS:
                raise RenderLimitError(f"the message is longer than {MAX_RENDERED_CHARS} characters (the limit)")
    finally:
        if isinstance(chunks, Generator):
            chunks.close()  # stops the render where it is
    return "".join(parts).strip()


class _StrippedLength:
    """The length of text added chunk by chunk, as ``strip()`` would leave it, kept up to date
    without joining the chunks again (which took quadratic time in their number)."""

    def __init__(self) -> None:
        self.size = self.leading = self.trailing = 0  # whitespace before the first other character, after the last
        self.started = False

    def add(self, chunk: str) -> int:
        self.size += len(chunk)
        if not chunk.strip():
            if self.started:
                self.trailing += len(chunk)
            else:
                self.leading += len(chunk)
        else:
            if not self.started:
                self.leading += len(chunk) - len(chunk.lstrip())
                self.started = True
            self.trailing = len(chunk) - len(chunk.rstrip())
        return self.size - self.leading - self.trailing


def _check_length(body: str) -> None:
    if len(body) > MAX_TEMPLATE_CHARS:
        raise InvalidEvent("template_error", f"template is {len(body)} characters; the limit is {MAX_TEMPLATE_CHARS}")


def check_syntax(body: str) -> None:
    """Raise ``InvalidEvent`` if the body does not even parse (used before saving)."""
    _check_length(body)
    try:
        _environment().parse(body)
    except TemplateError as exc:
        raise InvalidEvent("template_error", f"template syntax error: {exc}") from None


def sample_variables(body: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Variables to try a template with: ``data``, then the catalogue's sample values, then a
    ``Placeholder`` (printed ``<name>``) for any other name the template uses (a template for
    ``notification.requested`` may use any variable its events carry)."""
    env = _environment()
    used = meta.find_undeclared_variables(env.parse(body)) - set(env.globals)
    return {name: Placeholder(name) for name in sorted(used)} | SAMPLE_VARIABLES | (data or {})
