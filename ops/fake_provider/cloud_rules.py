"""Template messages, and what the fake enforces in strict mode as the real Cloud API does.

Strict mode (``FakeProviderServer(strict=True)``, ``wanotify fake-provider --strict``):

- free-form text goes only to a recipient whose customer-service window is open
  (``open_window(phone)``, for ``window_seconds``); otherwise 131047;
- a template goes only if it was registered (name, language, its body parameters: a count
  for ``{{1}}``…, or the names of named ones); otherwise 132001, and a wrong set of body
  parameters is 132000. A registered template's status may be PAUSED (132015) or DISABLED
  (132016).

Without strict mode every well-formed message is accepted, text or template.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wanotify.ops.fake_provider.replies import Reply, cloud_bad_request, cloud_error

DAY = 86_400.0
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
STATUS_CODES = {"PAUSED": (132015, "Template is Paused"), "DISABLED": (132016, "Template is Disabled")}


@dataclass(frozen=True)
class TemplateMessage:
    """The parts of a ``type: template`` request the fake checks and records."""

    name: str
    language: str
    # {"header": [...] or {...}, "body": [...] or {...}, "buttons": {"0": [...]}}: parameter texts
    params: dict[str, Any]


@dataclass(frozen=True)
class RegisteredTemplate:
    """An approved template the strict fake knows."""

    name: str
    language: str
    body_params: int | tuple[str, ...] = 0  # how many positional parameters, or the names of named ones
    status: str = "APPROVED"
    text: str | None = None  # the body with {{1}} / {{name}} placeholders, to show what arrives


def parse_template(data: dict[str, Any]) -> TemplateMessage | Reply:
    """Read a template request's ``template`` object; a 400 code 100 reply if it is malformed."""
    template = data.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("name"), str) or not template["name"]:
        return cloud_bad_request("'template.name' is required")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code:
        return cloud_bad_request("'template.language.code' is required")
    params: dict[str, Any] = {}
    for component in template.get("components") or []:
        problem = _read_component(component, params)
        if problem:
            return cloud_bad_request(problem)
    return TemplateMessage(template["name"], code, params)


def _read_component(component: Any, params: dict[str, Any]) -> str | None:
    if not isinstance(component, dict) or component.get("type") not in ("header", "body", "button"):
        return "each component needs a type: header, body or button"
    values = component.get("parameters") or []
    if not isinstance(values, list) or not all(isinstance(v, dict) and isinstance(v.get("text"), str) for v in values):
        return f"{component['type']} parameters must be objects with a text"
    if component["type"] == "button":
        if component.get("sub_type") != "url" or not str(component.get("index", "")).isdigit():
            return "a button component needs sub_type url and a numeric index"
        params.setdefault("buttons", {})[str(component["index"])] = [v["text"] for v in values]
    elif all("parameter_name" in v for v in values) and values:
        params[component["type"]] = {str(v["parameter_name"]): v["text"] for v in values}
    else:
        params[component["type"]] = [v["text"] for v in values]
    return None


class CloudRules:
    """Windows and registered templates, shared by every request thread."""

    def __init__(self, strict: bool = False, window_seconds: float = DAY, clock: Callable[[], float] = time.time) -> None:
        self.strict = strict
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, float] = {}  # digits of the number -> when the user last wrote
        self._templates: dict[tuple[str, str], RegisteredTemplate] = {}

    def open_window(self, phone: str) -> None:
        """The user ``phone`` (any format) just wrote: free-form text may go to them for a day."""
        with self._lock:
            self._windows[_digits(phone)] = self._clock()

    def close_window(self, phone: str) -> None:
        with self._lock:
            self._windows.pop(_digits(phone), None)

    def register(self, template: RegisteredTemplate) -> None:
        with self._lock:
            self._templates[(template.name, template.language)] = template

    def forget_templates(self) -> None:
        with self._lock:
            self._templates.clear()

    def refusal(self, to: str, template: TemplateMessage | None) -> Reply | None:
        """What the real API would refuse in strict mode; None when the message goes."""
        if not self.strict:
            return None
        if template is None:
            return None if self._window_open(to) else cloud_error(
                400, 131047, "Re-engagement message", details="Message failed to send because more than 24 hours "
                "have passed since the customer last replied to this number.")
        with self._lock:
            known = self._templates.get((template.name, template.language))
        return _template_refusal(known, template)

    def text_of(self, template: TemplateMessage) -> str:
        """The text the recipient reads: the registered body with its parameters, or a summary."""
        with self._lock:
            known = self._templates.get((template.name, template.language))
        body = template.params.get("body") or []
        if known is None or known.text is None:
            values = body.values() if isinstance(body, dict) else body
            return f"[{template.name}] " + " | ".join(values)
        return PLACEHOLDER.sub(lambda m: _fill(m.group(1), body), known.text)

    def _window_open(self, to: str) -> bool:
        with self._lock:
            wrote = self._windows.get(_digits(to))
        return wrote is not None and self._clock() - wrote < self.window_seconds


def _template_refusal(known: RegisteredTemplate | None, sent: TemplateMessage) -> Reply | None:
    if known is None:
        return cloud_error(404, 132001, "Template name does not exist in the translation",
                           details=f"template name ({sent.name}) does not exist in {sent.language}")
    if known.status.upper() in STATUS_CODES:
        code, title = STATUS_CODES[known.status.upper()]
        return cloud_error(400, code, title, details=f"template {sent.name} is {known.status.lower()}")
    body = sent.params.get("body") or []
    expected = known.body_params
    matches = (set(body) == set(expected) and isinstance(body, dict)) if isinstance(expected, tuple) \
        else (isinstance(body, list) and len(body) == expected)
    if not matches:
        return cloud_error(400, 132000, "Number of parameters does not match the expected number of params",
                           details=f"body: expected {expected}, got {body}")
    return None


def _fill(placeholder: str, body: list[str] | dict[str, str]) -> str:
    if isinstance(body, dict):
        return body.get(placeholder, "")
    index = int(placeholder) - 1 if placeholder.isdigit() else -1
    return body[index] if 0 <= index < len(body) else ""


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())
