"""The fake's own HTTP control API, for tests that run the fake in another process.

``GET /_fake/calls``      recorded calls (JSON list)
``DELETE /_fake/calls``   forget them
``POST /_fake/fail``      ``{"mode": "5xx", "count": 3}`` or ``{"mode": "5xx", "rate": 0.3, "seed": 1}``
``POST /_fake/ok``        stop injecting failures
``POST /_fake/webhooks/inbound``          ``{"url", "secret", "phone", "text"}``: a user's message, POSTed
                                          to the webhook at ``url`` signed with ``secret`` (see webhooks.py)
``POST /_fake/webhooks/template-status``  ``{"url", "secret", "name", "language", "event", "reason"?}``
``/_fake/strict``, ``/_fake/window``, ``/_fake/templates``  strict mode (see rules_api.py)
"""

from __future__ import annotations

import json
from typing import Any

from wanotify.ops.fake_provider import rules_api, webhooks
from wanotify.ops.fake_provider.replies import Reply, not_found
from wanotify.ops.fake_provider.state import FakeState

OK = {"ok": True}


def handle_control(state: FakeState, method: str, path: str, raw: bytes) -> Reply:
    """Answer one ``/_fake/...`` request."""
    route = (method, path.rstrip("/"))
    if route == ("GET", "/_fake/calls"):
        return Reply(200, state.calls())
    if route == ("DELETE", "/_fake/calls"):
        state.reset()
        return Reply(200, OK)
    if route == ("POST", "/_fake/fail"):
        return _inject_failures(state, raw)
    if route == ("POST", "/_fake/ok"):
        state.clear_failures()
        return Reply(200, OK)
    if route[0] == "POST" and route[1] in WEBHOOK_ROUTES:
        return _send_webhook(state, route[1], raw)
    if route[1] in rules_api.ROUTES:  # strict mode: windows and approved templates
        return rules_api.handle_rules(state.rules, route[0], route[1], raw)
    return not_found(path)


WEBHOOK_ROUTES = ("/_fake/webhooks/inbound", "/_fake/webhooks/template-status")


def _send_webhook(state: FakeState, path: str, raw: bytes) -> Reply:
    """Send Meta's webhook as asked; answers with what the webhook answered."""
    try:
        request = json.loads(raw or b"{}")
        if not isinstance(request, dict):
            raise ValueError("expected a JSON object")
        url, secret = str(request["url"]), str(request["secret"])
        if path.endswith("/inbound"):
            sent = webhooks.send_inbound(state, url, secret, str(request["phone"]), request.get("text", "hi"))
        else:
            sent = webhooks.send_template_status(url, secret, str(request["name"]), str(request["language"]),
                                                 str(request["event"]), reason=request.get("reason"))
    except (ValueError, TypeError, KeyError) as exc:
        return Reply(400, {"ok": False, "error": f"bad request: {exc}"}, outcome="error")
    except OSError as exc:  # the webhook is unreachable (requests' errors are OSErrors)
        return Reply(502, {"ok": False, "error": f"webhook unreachable: {exc}"}, outcome="error")
    return Reply(200, {"ok": True, "status": sent.status, "answer": sent.body})


def _inject_failures(state: FakeState, raw: bytes) -> Reply:
    try:
        request = json.loads(raw or b"{}")
        if not isinstance(request, dict):
            raise ValueError("expected a JSON object")
        _apply(state, request)
    except (ValueError, TypeError) as exc:
        return Reply(400, {"ok": False, "error": str(exc)}, outcome="error")
    return Reply(200, OK)


def _apply(state: FakeState, request: dict[str, Any]) -> None:
    mode = str(request.get("mode", "5xx"))
    if "count" in request:
        state.fail_next(int(request["count"]), mode)
    elif "rate" in request:
        seed = request.get("seed")
        state.set_failure_rate(float(request["rate"]), mode, None if seed is None else int(seed))
    else:
        raise ValueError('give "count" or "rate"')
