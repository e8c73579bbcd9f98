"""Hypothesis strategies for malformed events: random bytes, random JSON, and near-valid
envelopes with one part broken."""

from __future__ import annotations

import json
import uuid

from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

VALID_DATA = {"member_id": "M-1", "name": "Budi", "phone": "08114040707"}


@st.composite
def broken_envelopes(draw: st.DrawFn) -> bytes:
    envelope = {
        "event_id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        "event_type": draw(st.sampled_from(["member.registered", "payment.link_created", "withdrawal.rejected",
                                            "notification.requested", "no.such_type"])),
        "occurred_at": "2026-11-22T10:00:00Z",
        "data": dict(VALID_DATA),
    }
    target = draw(st.sampled_from(["event_id", "event_type", "occurred_at", "data", "phone", "name", "member_id"]))
    value = draw(json_values)
    if target in envelope:
        envelope[target] = value
    else:
        envelope["data"][target] = value
    if draw(st.booleans()):
        envelope.pop(draw(st.sampled_from(sorted(envelope))))
    return json.dumps(envelope).encode()


malformed_events = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    broken_envelopes(),
)
