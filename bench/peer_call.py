"""The one provider call the peer task queues (Celery, Dramatiq) make: a text message POSTed to
the fake Cloud API, as wanotify's sender would send it."""

from __future__ import annotations

import requests


def post_text(session: requests.Session, provider_url: str, to: str, body: str) -> str:
    """POST one text message; returns the provider's message id (raises on an HTTP error)."""
    response = session.post(
        f"{provider_url}/v21.0/bench/messages",
        json={"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
              "text": {"preview_url": False, "body": body}},
        headers={"Authorization": "Bearer bench"},
        timeout=5,
    )
    response.raise_for_status()
    return str(response.json()["messages"][0]["id"])
