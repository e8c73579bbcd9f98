"""Control routes for strict mode, for tests that run the fake in another process.

``POST /_fake/strict``     ``{"strict": true}``: enforce the window and approved templates
``POST /_fake/window``     ``{"phone": "+628…"}``: that user just wrote (their window opens)
``POST /_fake/templates``  ``{"name", "language", "body_params": 2 | ["name", …], "status"?, "text"?}``
``DELETE /_fake/templates``  forget every registered template
"""

from __future__ import annotations

import json
from typing import Any

from wanotify.ops.fake_provider.cloud_rules import CloudRules, RegisteredTemplate
from wanotify.ops.fake_provider.replies import Reply

ROUTES = ("/_fake/strict", "/_fake/window", "/_fake/templates")
OK = {"ok": True}


def handle_rules(rules: CloudRules, method: str, path: str, raw: bytes) -> Reply:
    """Answer one of ``ROUTES``."""
    if (method, path) == ("DELETE", "/_fake/templates"):
        rules.forget_templates()
        return Reply(200, OK)
    try:
        request = json.loads(raw or b"{}")
        if method != "POST" or not isinstance(request, dict):
            raise ValueError(f"{method} {path} takes a JSON object by POST")
        _apply(rules, path, request)
    except (ValueError, TypeError, KeyError) as exc:
        return Reply(400, {"ok": False, "error": f"bad request: {exc}"}, outcome="error")
    return Reply(200, OK)


def _apply(rules: CloudRules, path: str, request: dict[str, Any]) -> None:
    if path == "/_fake/strict":
        rules.strict = bool(request["strict"])
    elif path == "/_fake/window":
        rules.open_window(str(request["phone"]))
    else:
        params = request.get("body_params", 0)
        body_params = params if isinstance(params, int) else tuple(str(p) for p in params)
        rules.register(RegisteredTemplate(str(request["name"]), str(request["language"]), body_params,
                                          str(request.get("status", "APPROVED")), request.get("text")))
