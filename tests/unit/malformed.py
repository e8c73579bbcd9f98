"""Hypothesis strategies for bad events, each with the park reason it must get.

- ``labelled_events``: near-valid events broken in exactly one way, built so the reason is
  known (a truncated envelope is ``not_json``, a phone of four digits is ``invalid_phone``…),
  plus valid ones (``"valid"``: they must become messages);
- ``malformed_events``: random bytes and random JSON, whose reason is the first check they
  fail, decided by ``first_failure`` with the standard library alone.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

from wanotify.shared.events import MAX_EVENT_BYTES

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
non_strings = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=3) | st.dictionaries(
    st.text(max_size=4), st.integers(), max_size=2)
non_objects = json_values.filter(lambda v: not isinstance(v, dict))

VALID_DATA = {"member_id": "M-1", "name": "Budi", "phone": "08114040707"}


def first_failure(body: bytes) -> str:
    """The reason an arbitrary body must be parked for: the first check it fails. A random JSON
    object cannot carry a valid envelope (a UUID event_id, a dotted event type, a zoned time)."""
    if len(body) > MAX_EVENT_BYTES:
        return "too_large"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        return "invalid_data"  # JSON nested far deeper than events may nest
    except ValueError:
        return "not_json"
    return "invalid_envelope" if isinstance(value, dict) else "not_object"


def _no_constant(name: str) -> Any:
    raise ValueError(name)


malformed_events = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()))


@st.composite
def _envelope(draw: st.DrawFn, event_type: str = "member.registered", data: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        "event_type": event_type,
        "occurred_at": "2026-11-22T10:00:00Z",
        "data": dict(VALID_DATA) if data is None else data,
    }


def _encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


@st.composite
def _not_utf8(draw: st.DrawFn) -> bytes:
    body = _encode(draw(_envelope()))
    at = body.index(b"Budi")
    return body[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])) + body[at:]


@st.composite
def _not_json(draw: st.DrawFn) -> bytes:
    body = _encode(draw(_envelope()))
    if draw(st.booleans()):
        return body[:draw(st.integers(1, len(body) - 1))]  # every proper prefix of an object is unfinished
    return body.replace(b'"Budi"', draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"'Budi'"])))


@st.composite
def _too_large(draw: st.DrawFn) -> bytes:
    envelope = draw(_envelope())
    envelope["data"]["name"] = draw(st.sampled_from("xé🙂")) * MAX_EVENT_BYTES
    return _encode(envelope)


@st.composite
def _invalid_envelope(draw: st.DrawFn) -> bytes:
    envelope = draw(_envelope())
    field = draw(st.sampled_from(["event_id", "event_type", "occurred_at", "data"]))
    if draw(st.booleans()):
        del envelope[field]
        return _encode(envelope)
    broken = {
        "event_id": non_strings | st.text(alphabet="ghijklmnopqrstuvwxyz -", max_size=40),
        "event_type": non_strings | st.text(alphabet="ABCXYZ -/", max_size=20) | st.from_regex(r"[a-z]{1,10}", fullmatch=True),
        "occurred_at": st.sampled_from(["2026-11-22T10:00:00", "2026-11-22", "yesterday", ""]) | st.booleans() | st.none(),
        "data": non_objects,
    }
    envelope[field] = draw(broken[field])
    return _encode(envelope)


@st.composite
def _unknown_type(draw: st.DrawFn) -> bytes:
    return _encode(draw(_envelope(event_type="unknown." + draw(st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True)))))


@st.composite
def _invalid_data(draw: st.DrawFn) -> bytes:
    data = dict(VALID_DATA)
    field = draw(st.sampled_from(["member_id", "name", "phone"]))
    if draw(st.booleans()):
        del data[field]
    else:
        data[field] = draw(st.sampled_from(["", "x" * 501]) | st.none() | st.booleans() | st.lists(st.integers(), max_size=2))
    return _encode(draw(_envelope(data=data)))


@st.composite
def _invalid_phone(draw: st.DrawFn) -> bytes:
    phone = draw(st.from_regex(r"[0-9]{1,4}", fullmatch=True) | st.text(alphabet=" -()+.", min_size=1, max_size=10))
    return _encode(draw(_envelope(data=VALID_DATA | {"phone": phone})))


def _requested(template: str, variables: dict[str, Any]) -> st.SearchStrategy[bytes]:
    data = {"phone": "08114040707", "template": template, "variables": variables}
    return _envelope(event_type="notification.requested", data=data).map(_encode)


@st.composite
def _template_missing(draw: st.DrawFn) -> bytes:
    return draw(_requested("no_such_" + draw(st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True)), {}))


@st.composite
def _template_error(draw: st.DrawFn) -> bytes:
    # test_message needs sent_at: without it the template cannot render (a missing variable is an error)
    return draw(_requested("test_message", draw(st.dictionaries(st.sampled_from(["x", "sentat", "name"]), st.text()))))


@st.composite
def _valid(draw: st.DrawFn) -> bytes:
    name = draw(st.text(min_size=1, max_size=500).filter(lambda s: s.strip() and "\x00" not in s))
    return _encode(draw(_envelope(data=VALID_DATA | {"name": name})))


labelled_events = st.one_of(
    _not_utf8().map(lambda b: (b, "not_utf8")),
    _not_json().map(lambda b: (b, "not_json")),
    non_objects.map(lambda v: (json.dumps(v).encode(), "not_object")),
    _too_large().map(lambda b: (b, "too_large")),
    _invalid_envelope().map(lambda b: (b, "invalid_envelope")),
    _unknown_type().map(lambda b: (b, "unknown_type")),
    _invalid_data().map(lambda b: (b, "invalid_data")),
    _invalid_phone().map(lambda b: (b, "invalid_phone")),
    _template_missing().map(lambda b: (b, "template_missing")),
    _template_error().map(lambda b: (b, "template_error")),
    _valid().map(lambda b: (b, "valid")),
)
