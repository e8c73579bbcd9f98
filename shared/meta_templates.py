"""How a local template maps onto an approved WhatsApp message template, and what it sends.

Outside the customer-service window the Cloud API takes only approved templates. A mapping
names one (``name``, ``language``, ``category``) and says how an event's variables fill its
parameters (``params``, stored as ``templates.meta_params``)::

    {"header": ["{{ name }}"],
     "body": ["{{ name }}", "{{ amount|money }}"],            # positional: {{1}}, {{2}}
     "buttons": [{"index": 0, "sub_type": "url",
                  "text": "{{ payment_url|replace('https://pay.example.com/', '') }}"}]}

``body`` and ``header`` may instead be objects for named parameters
(``{"customer_name": "{{ name }}"}``). Every value is a template expression rendered with the
same sandboxed, bounded renderer as message bodies, at send time, from the variables kept
with the message — so a mapping set after a message was parked still applies to its replay.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import Environment, nodes

from wanotify.shared.errors import InvalidEvent
from wanotify.shared.templates import check_syntax, render

CATEGORIES = ("utility", "marketing", "authentication")
NAME = re.compile(r"^[a-z0-9_]{1,512}$")  # Meta's rule for template names
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$")  # id, en_US, es_419, fil
PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")  # Meta's rule for named parameters
TEXT_PARTS = ("header", "body")
BUTTON_SUB_TYPES = ("url",)  # the one button kind whose parameter is filled per message
MAX_BUTTON_INDEX = 9
# A template Meta will not deliver: the error code it is parked with, and what to do about it.
BLOCKED_STATUSES = {
    "PAUSED": ("template_paused", "is PAUSED by Meta for low quality: improve it in WhatsApp Manager or map "
                                  "another approved template"),
    "DISABLED": ("template_disabled", "is DISABLED by Meta (paused too often): map another approved template"),
    "REJECTED": ("template_rejected", "was REJECTED by Meta: fix and resubmit it in WhatsApp Manager, or map "
                                      "another approved template"),
}


# Renders one parameter's expression with the variables: ``render`` for real values.
Renderer = Callable[[str, dict[str, Any]], str]


class MappingError(ValueError):
    """A mapping that cannot be used; the message is one line saying what to fix."""


@dataclass(frozen=True)
class Mapping:
    """A local template's approved counterpart on the Cloud API."""

    name: str
    language: str
    category: str  # utility, marketing or authentication
    params: dict[str, Any]

    @classmethod
    def from_columns(cls, name: str | None, language: str | None, category: str | None,
                     params: dict[str, Any] | None) -> Mapping | None:
        """The mapping stored in a ``templates`` row, or None when it has none."""
        if not name or not language:
            return None
        return cls(name, language, category or "utility", params or {})


@dataclass(frozen=True)
class TemplateCall:
    """A template message's ``template`` object, ready for the Cloud API."""

    name: str
    language: str
    components: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        template: dict[str, Any] = {"name": self.name, "language": {"code": self.language}}
        if self.components:
            template["components"] = self.components
        return template


def check_mapping(name: str, language: str, category: str, params: Any) -> Mapping:
    """A validated mapping (names, category, and the shape and syntax of ``params``)."""
    if not NAME.fullmatch(name):
        raise MappingError(f"--meta-name {name!r} is not a template name: lowercase letters, digits and _ only")
    if not LANGUAGE.fullmatch(language):
        raise MappingError(f"--meta-language {language!r} is not a language code such as id or en_US")
    if category not in CATEGORIES:
        raise MappingError(f"--meta-category must be one of {', '.join(CATEGORIES)}, got {category!r}")
    return Mapping(name, language, category, check_params(params))


def check_params(params: Any) -> dict[str, Any]:
    """Refuse a ``meta_params`` value of the wrong shape or with an expression that does not parse."""
    if not isinstance(params, dict):
        raise MappingError("--meta-params must be a JSON object with body, header and/or buttons")
    unknown = sorted(set(params) - {*TEXT_PARTS, "buttons"})
    if unknown:
        raise MappingError(f"--meta-params: unknown key(s) {', '.join(unknown)}; use body, header, buttons")
    for part in TEXT_PARTS:
        if part in params:
            _check_text_part(part, params[part])
    if "buttons" in params:
        _check_buttons(params["buttons"])
    return params


def _check_text_part(part: str, value: Any) -> None:
    if isinstance(value, list):
        for index, expression in enumerate(value):
            _check_expression(f"{part}[{index}]", expression)
    elif isinstance(value, dict):
        for key, expression in value.items():
            if not PARAMETER_NAME.fullmatch(key):
                raise MappingError(f"--meta-params {part}: {key!r} is not a parameter name "
                                   "(lowercase letters, digits and _, starting with a letter)")
            _check_expression(f"{part}.{key}", expression)
    else:
        raise MappingError(f"--meta-params {part} must be a list (positional {{{{1}}}}, {{{{2}}}}…) "
                           "or an object (named parameters)")


def _check_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list):
        raise MappingError("--meta-params buttons must be a list of {\"index\": 0, \"sub_type\": \"url\", \"text\": …}")
    seen: set[int] = set()
    for button in buttons:
        if not isinstance(button, dict) or set(button) != {"index", "sub_type", "text"}:
            raise MappingError("--meta-params buttons: each needs exactly index, sub_type and text")
        index = button["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_BUTTON_INDEX or index in seen:
            raise MappingError(f"--meta-params buttons: index must be a distinct number 0–{MAX_BUTTON_INDEX}, "
                               f"got {index!r}")
        seen.add(index)
        if button["sub_type"] not in BUTTON_SUB_TYPES:
            raise MappingError(f"--meta-params buttons: sub_type {button['sub_type']!r} takes no parameter; "
                               "only url buttons are filled per message")
        _check_expression(f"buttons[{index}]", button["text"])


def _check_expression(where: str, expression: Any) -> None:
    if not isinstance(expression, str) or not expression.strip():
        raise MappingError(f"--meta-params {where} must be a non-empty template expression such as \"{{{{ name }}}}\"")
    try:
        check_syntax(expression)
    except InvalidEvent as exc:
        raise MappingError(f"--meta-params {where}: {exc.detail}") from None


def fill(mapping: Mapping, variables: dict[str, Any], renderer: Renderer = render) -> TemplateCall:
    """Render every parameter of ``mapping`` with ``variables``: the components of one message.

    A message's real values render with ``render``. A check or preview on sample data that
    holds placeholders passes ``trial_render`` (``wanotify.shared.templates``), which tries the
    parameters use by use as a template's body is tried, so they are refused for what fails
    whatever the values are (and, as a body, for one call that needs a number and a text at once).

    Raises ``MappingError`` naming the parameter that cannot render.
    """
    params = mapping.params
    components = [{"type": part, "parameters": _text_parameters(part, params[part], variables, renderer)}
                  for part in TEXT_PARTS if params.get(part)]
    components += [{"type": "button", "sub_type": b["sub_type"], "index": str(b["index"]),
                    "parameters": [{"type": "text",
                                    "text": _value(f"buttons[{b['index']}]", b["text"], variables, renderer)}]}
                   for b in params.get("buttons") or []]
    return TemplateCall(mapping.name, mapping.language, components)


def _text_parameters(part: str, spec: list[str] | dict[str, str], variables: dict[str, Any],
                     renderer: Renderer) -> list[dict[str, Any]]:
    if isinstance(spec, dict):
        return [{"type": "text", "parameter_name": key, "text": _value(f"{part}.{key}", value, variables, renderer)}
                for key, value in spec.items()]
    return [{"type": "text", "text": _value(f"{part}[{index}]", value, variables, renderer)}
            for index, value in enumerate(spec)]


def _value(where: str, expression: str, variables: dict[str, Any], renderer: Renderer) -> str:
    try:
        text = renderer(expression, variables)
    except InvalidEvent as exc:
        raise MappingError(f"parameter {where}: {exc.detail}") from None
    # Meta refuses a parameter with a line break, a tab or more than four spaces in a row.
    return " ".join(text.split())


def used_variables(params: dict[str, Any]) -> set[str]:
    """The variable names a (checked) ``meta_params`` value renders with.

    Read from the syntax tree alone (names loaded and never assigned): compiling it would need
    the renderer's filters, and these expressions are rendered only by ``fill``."""
    env = Environment()
    names: set[str] = set()
    for expression in _expressions(params):
        found = list(env.parse(expression).find_all(nodes.Name))
        names |= {n.name for n in found if n.ctx == "load"} - {n.name for n in found if n.ctx != "load"}
    return names - set(env.globals)


def _expressions(params: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for part in TEXT_PARTS:
        value = params.get(part) or []
        found += list(value.values()) if isinstance(value, dict) else list(value)
    return found + [button["text"] for button in params.get("buttons") or []]


def stored_variables(variables: MappingType[str, Any]) -> dict[str, Any]:
    """An event's variables as kept with its message (JSON), without the phone number.

    The phone is the message's recipient; ``send_variables`` puts it back at send time, so
    the number is stored once, where it is masked and purged like every other.
    """
    return {key: _jsonable(value) for key, value in variables.items() if key != "phone"}


def send_variables(stored: dict[str, Any] | None, recipient: str) -> dict[str, Any]:
    """The variables a template's parameters render with at send time."""
    return {**(stored or {}), "phone": recipient}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Amounts stay numbers, so `money` and arithmetic work the same at send time.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def blocked(status: str | None) -> tuple[str, str] | None:
    """(error code, what to do) when Meta's status of the template forbids sending it."""
    return BLOCKED_STATUSES.get((status or "").upper())
