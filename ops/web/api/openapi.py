"""The OpenAPI 3.1 document, built from the models the API validates and answers with.

Paths are written here as data; every schema comes from pydantic (``models_json_schema``),
including one schema per catalogue event type's ``data`` (``wanotify.shared.events.SCHEMAS``),
so the document cannot drift from what the API checks.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from wanotify.ops.web.api.models import (
    MAX_BATCH,
    Accepted,
    BatchAccepted,
    BatchIn,
    ErrorBody,
    EventIn,
    MessageList,
    MessageStatus,
    Parked,
)
from wanotify.shared.events import SCHEMAS

BASE = "/api/v1"
REF = "#/components/schemas/{model}"
BODY_MODELS: tuple[type[BaseModel], ...] = (EventIn, BatchIn, Accepted, BatchAccepted, ErrorBody, MessageStatus, MessageList,
                                            Parked)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {400: "The body is not JSON (`not_json`).",
             401: "No API key, or an unknown or revoked one (`unauthorized`; see WWW-Authenticate).",
             404: "No such message (`not_found`).",
             413: "The body is too large (`too_large`).",
             422: "Invalid: `errors` names each bad field by its path (`invalid_event`).",
             429: "Over the key's rate limit (`rate_limited`); wait Retry-After seconds.",
             503: "RabbitMQ or PostgreSQL is unavailable; retry after Retry-After seconds. When the broker did not "
                  "confirm (`broker_unavailable`) the event may have been published: post it again with the "
                  "`event_id` (or batch `events[].event_id`) this answer gives, never with a new one."}
    return {str(code): _json("ErrorBody", texts[code]) for code in codes}


def _paths() -> dict[str, Any]:
    message_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    event_id = {"name": "event_id", "in": "query", "required": True, "schema": {"type": "string", "format": "uuid"}}
    return {
        f"{BASE}/events": {"post": {
            "operationId": "postEvent", "summary": "Publish one event",
            "description": "Validated with the notifier's schemas, published to the events exchange with "
                           "confirms; 202 only after the broker's confirm. Posting the same event_id again "
                           "answers 202 again and yields no second message.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EventIn")}}},
            "responses": {"202": _json("Accepted", "Confirmed by the broker."), **_errors(400, 401, 413, 422, 429, 503)}}},
        f"{BASE}/events/batch": {"post": {
            "operationId": "postEvents", "summary": f"Publish up to {MAX_BATCH} events",
            "description": "All or nothing on validation: one invalid event refuses the batch (422, each error's "
                           "path starts with `events.<index>`) and nothing is published. Valid batches are "
                           "published event by event; if the broker fails part way, 503 lists which events "
                           "were confirmed — post the whole batch again with the event ids it gives. A batch "
                           "spends one rate-limit token per event.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BatchIn")}}},
            "responses": {"202": _json("BatchAccepted", "Every event confirmed by the broker."),
                          **_errors(400, 401, 413, 422, 429, 503)}}},
        f"{BASE}/messages": {"get": {
            "operationId": "listMessages", "summary": "The messages an event became",
            "description": "One per template the event's rules name; an empty list until the notifier has "
                           "handled the event, or when it parked the event: then `parked` says why.",
            "parameters": [event_id],
            "responses": {"200": _json("MessageList", "The messages, oldest first."), **_errors(401, 422, 429, 503)}}},
        f"{BASE}/schemas": {"get": {
            "operationId": "getSchemas", "summary": "The JSON Schemas of the events in and the status events out",
            "description": "`envelope`, `events` (one per catalogue event type, also at /api/v1/schemas/{event_type}) "
                           "and `status_event`, JSON Schema draft 2020-12. No key needed.",
            "security": [],
            "responses": {"200": {"description": "The schemas.", "content": {"application/json": {"schema": {
                "type": "object"}}}}}}},
        f"{BASE}/schemas/{{event_type}}": {"get": {
            "operationId": "getEventSchema", "summary": "The JSON Schema of one event type's data",
            "description": "The same schema as in `events` of /api/v1/schemas. No key needed.",
            "security": [],
            "parameters": [{"name": "event_type", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The schema.", "content": {"application/json": {"schema": {
                "type": "object"}}}}, "404": _json("ErrorBody", "No such event type (`not_found`).")}}},
        f"{BASE}/messages/{{id}}": {"get": {
            "operationId": "getMessage", "summary": "One message: status, attempts, timestamps, receipts",
            "parameters": [message_id],
            "responses": {"200": _json("MessageStatus", "The message."), **_errors(401, 404, 429, 503)}}},
    }


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once: it depends on code only)."""
    data_models: list[type[BaseModel]] = list(dict.fromkeys(SCHEMAS.values()))
    _, top = models_json_schema([(m, "validation") for m in (*BODY_MODELS, *data_models)], ref_template=REF)
    schemas = top.get("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "wanotify HTTP API", "version": "1",
                 "description": "Publish events and read what became of them. Every request but this document "
                                "and the docs page needs `Authorization: Bearer <key>` (`wanotify api-keys create`). "
                                "The `data` of each catalogue event type: "
                                + ", ".join(f"`{t}` → {m.__name__}" for t, m in SCHEMAS.items()) + "."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": _paths(),
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "wnk_…"}}},
    }
