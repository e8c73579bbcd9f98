"""The fake provider as Meta's webhook sender: payloads shaped like the Cloud API's, signed and POSTed.

Meta signs each body with the app secret (``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the
raw body>``) and POSTs it to the app's webhook URL; so does this, so tests drive the real
webhook server the way Meta would. The builders are also used on their own by tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

WABA_ID = "102290129340398"  # the fake account's id, as Meta puts it in entry[].id
PHONE_NUMBER_ID = "1234567890"
DISPLAY_NUMBER = "15550783881"
SIGNATURE_HEADER = "X-Hub-Signature-256"


@dataclass(frozen=True)
class Delivery:
    """What the webhook answered to one POST."""

    status: int
    body: Any
    payload: dict[str, Any]


def envelope(field: str, value: dict[str, Any], at: int | None = None) -> dict[str, Any]:
    """One change in Meta's envelope; ``at`` is the entry's ``time`` (Unix seconds; None: left out)."""
    entry: dict[str, Any] = {"id": WABA_ID, "changes": [{"field": field, "value": value}]}
    if at is not None:
        entry["time"] = at
    return {"object": "whatsapp_business_account", "entry": [entry]}


def inbound_payload(phone: str, text: str | None = "hi", *, message_id: str | None = None,
                    at: int | None = None, kind: str = "text") -> dict[str, Any]:
    """A message from ``phone`` (E.164 or digits) to our number, as the ``messages`` field carries it."""
    wa_id = "".join(ch for ch in phone if ch.isdigit())
    message: dict[str, Any] = {"from": wa_id, "id": message_id or f"wamid.in.{uuid.uuid4().hex}",
                               "timestamp": str(at if at is not None else int(time.time())), "type": kind}
    if kind == "text":
        message["text"] = {"body": text or ""}
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
             "contacts": [{"profile": {"name": "Member"}, "wa_id": wa_id}], "messages": [message]}
    return envelope("messages", value)


def template_status_payload(name: str, language: str, event: str, *, reason: str | None = None,
                            template_id: int = 1001, at: int | None = None) -> dict[str, Any]:
    """``message_template_status_update``: APPROVED, PAUSED, DISABLED, REJECTED…"""
    value = {"event": event, "message_template_id": template_id, "message_template_name": name,
             "message_template_language": language, "reason": reason or "NONE"}
    return envelope("message_template_status_update", value, at if at is not None else int(time.time()))


def template_quality_payload(name: str, language: str, quality: str, *, previous: str = "GREEN",
                             template_id: int = 1001, at: int | None = None) -> dict[str, Any]:
    """``message_template_quality_update``: GREEN, YELLOW, RED, UNKNOWN."""
    value = {"previous_quality_score": previous, "new_quality_score": quality, "message_template_id": template_id,
             "message_template_name": name, "message_template_language": language}
    return envelope("message_template_quality_update", value, at if at is not None else int(time.time()))


def number_quality_payload(event: str, limit: str, *, old_limit: str | None = None,
                           at: int | None = None) -> dict[str, Any]:
    """``phone_number_quality_update``: FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE… with the messaging limit."""
    value = {"display_phone_number": DISPLAY_NUMBER, "event": event, "current_limit": limit}
    if old_limit is not None:
        value["old_limit"] = old_limit
    return envelope("phone_number_quality_update", value, at if at is not None else int(time.time()))


def account_alert_payload(alert_type: str, description: str, *, severity: str = "WARNING",
                          at: int | None = None) -> dict[str, Any]:
    """``account_alerts`` about our phone number."""
    value = {"entity_type": "PHONE_NUMBER", "entity_id": PHONE_NUMBER_ID,
             "alert_info": {"alert_severity": severity, "alert_status": "ACTIVE", "alert_type": alert_type,
                            "alert_description": description}}
    return envelope("account_alerts", value, at if at is not None else int(time.time()))


def signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, app_secret: str, payload: dict[str, Any], timeout: float = 10.0) -> Delivery:
    """POST ``payload`` to the webhook at ``url``, signed over the exact bytes sent (non-ASCII escaped,
    as Meta sends it)."""
    body = json.dumps(payload).encode()
    reply = requests.post(url, data=body, timeout=timeout,
                          headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, app_secret)})
    try:
        answer: Any = reply.json()
    except ValueError:
        answer = reply.text
    return Delivery(reply.status_code, answer, payload)


def send_inbound(state: Any, url: str, app_secret: str, phone: str, text: str | None = "hi",
                 **options: Any) -> Delivery:
    """A message from ``phone`` to us; in strict mode it also opens that recipient's window in the fake."""
    open_window = getattr(state, "open_window", None)  # the strict mode's window, when the fake has one
    if callable(open_window):
        open_window(phone)
    return post(url, app_secret, inbound_payload(phone, text, **options))


def send_template_status(url: str, app_secret: str, name: str, language: str, event: str,
                         **options: Any) -> Delivery:
    """Meta telling us a template's status changed."""
    return post(url, app_secret, template_status_payload(name, language, event, **options))
