"""JSON Schemas of what wanotify takes in and sends out, generated from the models that check it.

The notifier validates an event with ``Envelope`` and then its type's data model
(shared/events.py); the status relay builds its bodies with ``StatusEvent``
(shared/status_events.py). The schemas here are pydantic's own rendering of those models
(JSON Schema draft 2020-12), so what an upstream app validates against is what wanotify
checks, and ``wanotify schemas export --check`` (run by the tests) keeps the checked-in copies
under docs/ equal to the code.

What a schema cannot say: a phone number must also parse (with ``DEFAULT_REGION``), an event
may be at most 64 KiB and nest at most 32 levels of objects and arrays; the notifier parks an
event that fails any of these, with its reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, create_model

from wanotify.shared.events import SCHEMAS, Envelope
from wanotify.shared.status_events import StatusEvent

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Schemas are named by URN: they are served by every wanotify (GET /api/v1/schemas) and
# checked in under docs/schemas/, so no one host is their home.
ID_PREFIX = "urn:wanotify:schema:"

# Where each schema lives under the docs folder (and the AsyncAPI document's $refs).
ENVELOPE_PATH = "schemas/envelope.json"
STATUS_EVENT_PATH = "schemas/status-event.json"


def event_schema_path(event_type: str) -> str:
    return f"schemas/events/{event_type}.json"


def envelope_schema() -> dict[str, Any]:
    """Any event: the envelope every type shares, ``data`` an object."""
    return _published(Envelope, "envelope",
                      "The envelope of every event published to {ns}.events (routing key = event_type). "
                      "Unknown extra fields are ignored.")


def event_schemas() -> dict[str, dict[str, Any]]:
    """A schema per catalogue event type: the envelope with that ``event_type`` and its ``data``."""
    return {event_type: _published(event_model(event_type), f"event:{event_type}",
                                   f"A {event_type} event as published to {{ns}}.events with routing key {event_type}.")
            for event_type in SCHEMAS}


def status_event_schema() -> dict[str, Any]:
    """The body of a status event on {ns}.status (contract section 9)."""
    return _published(StatusEvent, "status-event",
                      "A status change of one message, published to {ns}.status with routing key message.<status>. "
                      "It never carries a phone number.")


def published_schemas() -> dict[str, Any]:
    """Every schema, as ``GET /api/v1/schemas`` serves them."""
    return {"envelope": envelope_schema(), "events": event_schemas(), "status_event": status_event_schema()}


def schema_documents() -> dict[str, dict[str, Any]]:
    """Every schema by its path under the docs folder."""
    documents = {ENVELOPE_PATH: envelope_schema(), STATUS_EVENT_PATH: status_event_schema()}
    documents |= {event_schema_path(event_type): schema for event_type, schema in event_schemas().items()}
    return documents


def event_model(event_type: str) -> type[BaseModel]:
    """The envelope narrowed to one catalogue type: ``event_type`` fixed, ``data`` its model.
    Only for rendering the schema; the notifier still validates in two steps, the same two."""
    name = "".join(part.title() for part in event_type.replace("_", ".").split(".")) + "Event"
    fixed_type: Any = Literal[event_type]  # a value known only at run time: JSON Schema's "const"
    return create_model(name, __base__=Envelope, event_type=(fixed_type, ...), data=(SCHEMAS[event_type], ...))


def _published(model: type[BaseModel], name: str, description: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["description"] = description
    # $schema and $id first: what a reader (and a validator) looks at before the rest.
    return {"$schema": DIALECT, "$id": f"{ID_PREFIX}{name}", **schema}
