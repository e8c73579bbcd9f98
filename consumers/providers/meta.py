"""WhatsApp Cloud API (Meta) adapter: one text or template message per call.

Which of the two a message is, the sender decides (``consumers/sender/choice.py``): the
adapter only shapes the request and sorts the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from wanotify.consumers.providers.base import (
    HttpClient,
    OutgoingMessage,
    Request,
    SendResult,
    json_or_none,
    require_http_url,
)
from wanotify.consumers.providers.classify import classify_meta_error
from wanotify.shared.config import WhatsAppSettings
from wanotify.shared.errors import ConfigError
from wanotify.shared.meta_templates import TemplateCall

DEFAULT_BASE_URL = "https://graph.facebook.com"

log = logging.getLogger(__name__)


class MetaCloudProvider:
    """Sends through ``POST {base}/{version}/{phone_number_id}/messages`` with a bearer token."""

    name = "meta"

    def __init__(self, settings: WhatsAppSettings) -> None:
        if not settings.phone_number_id:
            raise ConfigError("WHATSAPP_PHONE_NUMBER_ID is required when WHATSAPP_PROVIDER=meta")
        if not settings.access_token:
            raise ConfigError("WHATSAPP_ACCESS_TOKEN is required when WHATSAPP_PROVIDER=meta")
        base = require_http_url(settings.base_url or DEFAULT_BASE_URL, "WHATSAPP_API_BASE_URL")
        version = settings.api_version.strip("/")
        self.url = f"{base}/{version}/{settings.phone_number_id}/messages"
        self._http = HttpClient(self.url, settings.timeout_seconds,
                                {"Authorization": f"Bearer {settings.access_token}"})

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send ``message`` (its approved template if it carries one, else its text); raises
        TransientError / PermanentError on failure."""
        return self.prepare(message)()

    def prepare(self, message: OutgoingMessage) -> Callable[[], SendResult]:
        """The request built now; the returned call sends it (``send``, in two steps)."""
        return partial(self._call, message, self._http.prepare("POST", self.url, json_body=message_payload(message)))

    def _call(self, message: OutgoingMessage, request: Request) -> SendResult:
        response = self._http.perform(request)
        payload = json_or_none(response)
        if not 200 <= response.status_code < 300:
            raise classify_meta_error(response.status_code, payload, response.headers)
        message_id = first_message_id(payload)
        if message_id is None:
            # Accepted but no id: sending again would duplicate the message, so report success
            # and accept that delivery statuses cannot be matched to it.
            log.warning("Cloud API accepted log_id=%s without a message id", message.log_id)
        return SendResult(provider_message_id=message_id)

    def close(self) -> None:
        """Release the pooled connections."""
        self._http.close()


def message_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The Cloud API JSON for ``message``: a template message if it carries one, else text."""
    if message.template_call is not None:
        return template_message_payload(message.recipient, message.template_call)
    return text_message_payload(message)


def text_message_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The Cloud API JSON for a plain text message (the API wants the number without "+")."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient.lstrip("+"),
        "type": "text",
        "text": {"preview_url": False, "body": message.body},
    }


def template_message_payload(recipient: str, call: TemplateCall) -> dict[str, Any]:
    """The Cloud API JSON for an approved template with its parameters filled in."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient.lstrip("+"),
        "type": "template",
        "template": call.as_json(),
    }


def first_message_id(payload: Any) -> str | None:
    """``messages[0].id`` from a success response, if it is there."""
    if not isinstance(payload, dict):
        return None
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        return None
    message_id = messages[0].get("id")
    return str(message_id) if message_id else None
