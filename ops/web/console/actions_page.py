"""Actions (operators): send a test, send an urgent message (a text, or a template, to one
phone, at top priority, the gap kept), retry failed messages now, pause and resume sending,
and clear the queue (typing the number of waiting messages confirms it). Each button calls
the same service as its command: ``send-test``, ``retry-failed``, ``pause``, ``resume``,
``queue clear``."""

from __future__ import annotations

from starlette.responses import Response

from wanotify.ops.admin import controls, pausing
from wanotify.ops.admin.publishing import send_urgent
from wanotify.ops.admin.users import Role
from wanotify.ops.web.console.acting import admin_action
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post, whole_number
from wanotify.shared.errors import WanotifyError


async def page(ctx: Ctx) -> Response:
    shown = await ctx.db(controls.state, ctx.console.settings.namespace)
    return ctx.render("actions.html", title="Actions", s=shown)


def _field(ctx: Ctx, name: str) -> str:
    return str(ctx.form.get(name) or "").strip()


def _variables(text: str) -> dict[str, str]:
    """``name=value`` lines (the CLI's ``--var``); a line without ``=`` is refused."""
    variables = {}
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise WanotifyError(f"{line!r} is not name=value (one variable per line)")
        variables[name.strip()] = value.strip()
    return variables


async def _send(ctx: Ctx, action: str, *, text: str | None = None, template: str | None = None,
                variables: dict[str, str] | None = None) -> Response:
    try:
        sent = await ctx.db(send_urgent, ctx.console.settings, ctx.actor, _field(ctx, "phone"), text=text,
                            template=template, variables=variables, action=action)
    except WanotifyError as exc:  # refused (the notifier's reason), or the broker did not take it
        ctx.flash(str(exc), "error")
        return ctx.redirect("/actions")
    message = sent.as_dict()["messages"][0]
    ctx.flash(f"Queued {message['template']} to {message['recipient']} at top priority (event {sent.event_id}).", "ok")
    return ctx.redirect("/actions")


async def send_test(ctx: Ctx) -> Response:
    return await _send(ctx, "send.test")


async def send_now(ctx: Ctx) -> Response:
    if ctx.form.get("mode") == "text":
        return await _send(ctx, "send.urgent", text=_field(ctx, "text"))
    try:
        variables = _variables(_field(ctx, "variables"))
    except WanotifyError as exc:
        ctx.flash(str(exc), "error")
        return ctx.redirect("/actions")
    return await _send(ctx, "send.urgent", template=_field(ctx, "template") or None, variables=variables)


async def retry_failed(ctx: Ctx) -> Response:
    outcome = await admin_action(ctx, "retry_failed", controls.FAILED_LIMIT)
    ctx.flash(f"{outcome.counts.get('messages_requeued', 0)} failed message(s) queued for another call now.", "ok")
    return ctx.redirect("/actions")


async def pause(ctx: Ctx) -> Response:
    try:
        await ctx.db(pausing.pause, ctx.console.settings.namespace, ctx.actor, _field(ctx, "reason") or None)
    except WanotifyError as exc:  # no `default` sender once senders are rows: the Senders page pauses each
        ctx.flash(f"{exc} (the Senders page pauses each number)", "error")
        return ctx.redirect("/actions")
    ctx.flash("Sending paused until resumed; the call in flight, if any, finishes.", "ok")
    return ctx.redirect("/actions")


async def resume(ctx: Ctx) -> Response:
    try:
        lifted = await ctx.db(pausing.resume, ctx.console.settings.namespace, ctx.actor)
    except WanotifyError as exc:
        ctx.flash(f"{exc} (the Senders page resumes each number)", "error")
        return ctx.redirect("/actions")
    ctx.flash("Sending resumed (the gap after the last call is kept)." if lifted else "Sending was not paused.", "ok")
    return ctx.redirect("/actions")


async def clear(ctx: Ctx) -> Response:
    typed = whole_number(_field(ctx, "confirm"))
    if typed is None:
        ctx.flash("Type the number of waiting messages to confirm clearing the queue.", "error")
        return ctx.redirect("/actions")
    try:
        outcome = await admin_action(ctx, "clear_queue", typed)
    except WanotifyError as exc:
        ctx.flash(str(exc), "error")
        return ctx.redirect("/actions")
    ctx.flash(f"{outcome.counts.get('messages_cancelled', 0)} waiting message(s) cancelled.", "ok")
    return ctx.redirect("/actions")


PAGE = Page(
    routes=[get("/actions", page, role=Role.OPERATOR), post("/actions/test", send_test), post("/actions/urgent", send_now),
            post("/actions/retry-failed", retry_failed), post("/actions/pause", pause),
            post("/actions/resume", resume), post("/actions/clear", clear)],
    nav=[NavEntry("Actions", "/actions", role=Role.OPERATOR, order=60)],
)
