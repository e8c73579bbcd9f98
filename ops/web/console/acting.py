"""Running the admin actions that use the broker (``wanotify.ops.admin.actions.Admin``) from a console handler.

``Admin`` does its database work with blocking calls between its broker awaits, so it runs
on a worker thread with an event loop of its own: the console's loop keeps serving pages
while a replay walks a dead-letter queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wanotify.ops.admin.actions import Admin, Outcome
from wanotify.ops.web.console.kit import Ctx


async def admin_action(ctx: Ctx, action: str, *args: Any) -> Outcome:
    """``Admin.<action>(*args)`` as the console's user (the audit log's actor)."""
    settings, actor = ctx.console.settings, ctx.actor

    async def go() -> Outcome:
        async with Admin(settings, actor) as admin:
            outcome: Outcome = await getattr(admin, action)(*args)
            return outcome

    return await asyncio.to_thread(asyncio.run, go())


def counted(counts: dict[str, int], done: str) -> str:
    """``{"messages_replayed": 2, "events_replayed": 1}`` as "2 message(s) and 1 event(s) replayed"."""
    messages = counts.get(f"messages_{done}", 0)
    events = counts.get(f"events_{done}", 0)
    return f"{messages} message(s) and {events} event(s) {done}"
