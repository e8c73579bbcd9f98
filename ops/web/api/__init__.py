"""The ``api`` part: the HTTP API under ``/api/v1`` (contract section 8).

Any app that can send HTTP can publish events and read what became of them:

- ``POST /api/v1/events`` (one envelope) and ``POST /api/v1/events/batch`` (up to 500),
  validated with the notifier's own schemas, published with confirms, answered after the
  broker's confirm (``publishing``, ``validation``);
- ``GET /api/v1/messages?event_id=…`` and ``GET /api/v1/messages/{id}`` (``services``);
- ``GET /api/v1/openapi.json`` and ``GET /api/v1/docs``, generated from the same pydantic
  models (``models``, ``openapi``).

Every request carries ``Authorization: Bearer <key>`` (``auth``) and spends tokens from its
key's bucket (``ratelimit``). ``part`` wires it together; ``routes`` holds the handlers.
"""
