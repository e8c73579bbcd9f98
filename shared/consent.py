"""Which messages a recipient's opt-out stops (``OPT_OUT_SCOPE``).

``marketing`` (the default) stops what the recipient asked to stop: templates mapped to a
``marketing`` approved template, and ``notification.requested`` events at ``low`` priority
(the contract's marketing/bulk level). Transactional messages — a payment link, a
withdrawal decision — still go: they answer something the member did, and WhatsApp's own
"stop promotions" (131050) covers marketing only. ``all`` stops every message.
"""

from __future__ import annotations

BULK_EVENT_TYPE = "notification.requested"
BULK_PRIORITY = "low"
OPTED_OUT = "opted_out"  # the error code of a message an opt-out stopped


def opt_out_covers(scope: str, *, category: str | None, event_type: str, priority: str) -> bool:
    """Whether an opt-out under ``scope`` stops this message."""
    if scope == "all":
        return True
    return category == "marketing" or (event_type == BULK_EVENT_TYPE and priority == BULK_PRIORITY)


def opted_out_reason(scope: str) -> str:
    """The text a stopped message is recorded with."""
    what = "every message" if scope == "all" else "marketing messages"
    return (f"the recipient opted out of {what} (OPT_OUT_SCOPE={scope}); nothing was sent. "
            "If they opt in again, send it anew")
