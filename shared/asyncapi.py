"""The AsyncAPI 3.0 document of wanotify's broker surface, generated from the code.

Two channels, seen from wanotify (the application the document describes):
- ``{namespace}.events``: the topic exchange upstream apps publish to; wanotify *receives* one
  message per catalogue event type, routing key = the event type;
- ``{namespace}.status``: the topic exchange wanotify *sends* status changes to, routing key
  ``message.<status>``.

Names come from ``Topology`` (with the default namespace in the AMQP bindings), event types
from the catalogue and payloads are ``$ref``s to the JSON Schemas of shared/schemas.py, so
nothing here is typed twice.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import yaml

from wanotify.shared.events import SCHEMAS
from wanotify.shared.schemas import STATUS_EVENT_PATH, event_schema_path
from wanotify.shared.status_events import PublishedStatus, status_routing_key
from wanotify.shared.topology import Topology

ASYNCAPI_VERSION = "3.0.0"
# Payloads are JSON Schema 2020-12 documents (pydantic's dialect), named as such: AsyncAPI's
# own schema format is draft-07 based.
PAYLOAD_FORMAT = "application/schema+json;version=draft-2020-12"
AMQP_BINDING_VERSION = "0.3.0"
NAMESPACE_PARAMETER = "namespace"
# The document sits next to its schemas (docs/asyncapi.yaml, docs/schemas/...): $refs are relative to it.
DOCUMENT_PATH = "asyncapi.yaml"

DESCRIPTION = """\
Event-driven WhatsApp notifications on RabbitMQ. Upstream apps publish events to the topic
exchange `{namespace}.events` (routing key = the event type, persistent, content type
application/json, AMQP `message_id` = the envelope's `event_id`, ideally with publisher
confirms and `mandatory`); wanotify renders, paces and sends one WhatsApp message per rule
and publishes every status change of a message to the topic exchange `{namespace}.status`
(routing key `message.<status>`). The namespace is WANOTIFY_NAMESPACE (default `wanotify`).
"""


def asyncapi_document() -> dict[str, Any]:
    """The document as a dict, in the order a reader wants it."""
    defaults = Topology()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "wanotify", "version": _package_version(), "description": " ".join(DESCRIPTION.split())},
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": {"host": "localhost:5672", "protocol": "amqp", "protocolVersion": "0.9.1",
                                 "description": "The RabbitMQ wanotify uses (AMQP_URL)."}},
        "channels": {
            "events": _channel(defaults.events_exchange, "events", "Events from upstream apps.",
                               {event_type: _event_message(event_type) for event_type in SCHEMAS}),
            "status": _channel(defaults.status_exchange, "status", "Status changes of messages, out to upstream apps.",
                               {status.value: _status_message(status) for status in PublishedStatus}),
        },
        "operations": {**_event_operations(), **_status_operations()},
    }


def render_asyncapi() -> str:
    """The YAML text of the document, as checked in."""
    text: str = yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)
    return text


def _channel(exchange: str, suffix: str, description: str, messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": f"{{{NAMESPACE_PARAMETER}}}.{suffix}",
        "description": description,
        "parameters": {NAMESPACE_PARAMETER: {"default": Topology().namespace,
                                             "description": "WANOTIFY_NAMESPACE: the prefix of every name on the broker."}},
        "messages": messages,
        "bindings": {"amqp": {"is": "routingKey", "bindingVersion": AMQP_BINDING_VERSION,
                              "exchange": {"name": exchange, "type": "topic", "durable": True, "autoDelete": False,
                                           "vhost": "/"}}},
    }


def _event_message(event_type: str) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": event_type,
        "summary": f"A {event_type} event; routing key {event_type}.",
        "contentType": "application/json",
        "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": event_schema_path(event_type)}},
    }


def _status_message(status: PublishedStatus) -> dict[str, Any]:
    key = status_routing_key(status)
    return {
        "name": key,
        "title": key,
        "summary": f"A message became {status.value}; routing key {key}.",
        "contentType": "application/json",
        "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": STATUS_EVENT_PATH}},
    }


def _event_operations() -> dict[str, Any]:
    return {_operation_id("receive", event_type): {
        "action": "receive",
        "channel": {"$ref": "#/channels/events"},
        "summary": f"Upstream apps publish {event_type} with routing key {event_type}.",
        "messages": [{"$ref": f"#/channels/events/messages/{event_type}"}],
        # What a publisher sets: the routing key, persistence and mandatory routing.
        "bindings": {"amqp": {"cc": [event_type], "deliveryMode": 2, "mandatory": True,
                              "bindingVersion": AMQP_BINDING_VERSION}},
    } for event_type in SCHEMAS}


def _status_operations() -> dict[str, Any]:
    return {_operation_id("send", status_routing_key(status)): {
        "action": "send",
        "channel": {"$ref": "#/channels/status"},
        "summary": f"wanotify publishes {status_routing_key(status)}, with confirms, in order per message.",
        "messages": [{"$ref": f"#/channels/status/messages/{status.value}"}],
        "bindings": {"amqp": {"cc": [status_routing_key(status)], "deliveryMode": 2,
                              "bindingVersion": AMQP_BINDING_VERSION}},
    } for status in PublishedStatus}


def _operation_id(action: str, key: str) -> str:
    """``receive`` + ``member.registered`` -> ``receiveMemberRegistered``."""
    return action + "".join(part.title() for part in key.replace("_", ".").split("."))


def _package_version() -> str:
    try:
        return version("wanotify")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"
