#!/bin/sh
# Publish one event through wanotify's HTTP API; prints {"event_id": "..."} (202), or the error.
curl --fail-with-body --silent --show-error \
  -H "Authorization: Bearer $WANOTIFY_API_KEY" \
  -H 'Content-Type: application/json' \
  --data '{"event_type": "member.registered", "occurred_at": "2026-11-22T10:00:00Z", "source": "shell",
           "data": {"member_id": "M-1001", "name": "Budi", "phone": "08114040707"}}' \
  "${WANOTIFY_URL:-http://localhost:8080}/api/v1/events"
