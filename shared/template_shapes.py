"""How many parameters an approved template takes, and whether a mapping fills as many.

A template's ``components`` (as the Business Management API lists them) hold its texts: the
BODY and a TEXT HEADER with positional ``{{1}}`` or named ``{{first_name}}`` placeholders,
and BUTTONS whose URL buttons may end in one ``{{1}}``. A mapping (``templates.meta_params``)
fills ``body`` and ``header`` with a list (positional) or an object (named) and ``buttons``
with ``{"index", "sub_type": "url", "text"}`` items. Meta refuses a message whose counts
differ (132000), so a difference found here is one found before any member misses a message.
"""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def placeholders(text: Any) -> list[str]:
    """The distinct placeholders of ``text``, in order of appearance."""
    seen: dict[str, None] = {}
    for name in PLACEHOLDER.findall(text if isinstance(text, str) else ""):
        seen.setdefault(name, None)
    return list(seen)


def template_parameters(components: Any) -> dict[str, Any]:
    """What the template needs: ``body`` and ``header`` placeholders, ``buttons`` indexes of URL buttons
    that take a parameter."""
    needs: dict[str, Any] = {"body": [], "header": [], "buttons": []}
    for component in components if isinstance(components, list) else []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type") or "").upper()
        if kind in ("BODY", "HEADER") and str(component.get("format") or "TEXT").upper() == "TEXT":
            needs[kind.lower()] = placeholders(component.get("text"))
        elif kind == "BUTTONS":
            needs["buttons"] = _dynamic_buttons(component.get("buttons"))
    return needs


def _dynamic_buttons(buttons: Any) -> list[int]:
    return [index for index, button in enumerate(buttons if isinstance(buttons, list) else [])
            if isinstance(button, dict) and str(button.get("type") or "").upper() == "URL"
            and placeholders(button.get("url"))]


def mapping_parameters(params: Any) -> dict[str, Any]:
    """What a mapping fills: ``body`` and ``header`` names (positions as "1", "2"…), ``buttons`` indexes."""
    params = params if isinstance(params, dict) else {}
    filled: dict[str, Any] = {}
    for part in ("body", "header"):
        value = params.get(part) or []
        filled[part] = [str(k) for k in value] if isinstance(value, dict) else [str(i + 1) for i in range(len(value))]
    buttons = params.get("buttons") if isinstance(params.get("buttons"), list) else []
    filled["buttons"] = sorted(b["index"] for b in buttons if isinstance(b, dict) and isinstance(b.get("index"), int))
    return filled


def compare_counts(components: Any, params: Any) -> list[tuple[str, str]]:
    """(kind, what differs) for each part where the mapping and the template disagree."""
    needs, filled = template_parameters(components), mapping_parameters(params)
    problems = []
    for part in ("body", "header"):
        wanted, given = needs[part], filled[part]
        if len(wanted) != len(given):
            problems.append((f"{part}_params", f"{part} has {_count(wanted)}{_list(wanted)}, the mapping fills {len(given)}"))
        elif _named(wanted) and set(wanted) != set(given):
            problems.append((f"{part}_params", f"{part} names its parameters {', '.join(wanted)}; the mapping fills "
                                               f"{', '.join(given) or 'none'}"))
    if needs["buttons"] != filled["buttons"]:
        problems.append(("button_params", f"URL buttons taking a parameter: {_indexes(needs['buttons'])}; "
                                          f"the mapping fills {_indexes(filled['buttons'])}"))
    return problems


def _named(names: list[str]) -> bool:
    return any(not name.isdigit() for name in names)


def _count(names: list[str]) -> str:
    return f"{len(names)} parameter{'' if len(names) == 1 else 's'}"


def _list(names: list[str]) -> str:
    return f" ({', '.join('{{' + n + '}}' for n in names)})" if names else ""


def _indexes(indexes: list[int]) -> str:
    return ", ".join(f"#{i}" for i in indexes) if indexes else "none"
