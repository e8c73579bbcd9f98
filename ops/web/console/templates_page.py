"""Templates (admins): the list, and an editor with a live preview on sample data for the
template's event type (htmx, as you type), errors inline, the check and a sample render before
saving, an active toggle, delete, and the history of changes with a diff. Every button calls
the same service as ``wanotify templates set|delete|history``."""

from __future__ import annotations

from starlette.responses import Response

from wanotify.ops.admin import templates as service
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.admin.users import Role
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post


def _key(ctx: Ctx) -> str:
    return str(ctx.request.path_params["key"])


async def listing(ctx: Ctx) -> Response:
    new_key = ctx.request.query_params.get("new", "").strip()  # the "new template" form
    problem = None
    if new_key:
        try:
            service.check_key(new_key)
            return ctx.redirect(f"/templates/{new_key}")
        except ActionRefused as exc:
            problem = str(exc)
    rows = await ctx.db(service.overview)
    return ctx.render("templates.html", title="Templates", rows=rows, new_key=new_key, problem=problem)


async def edit(ctx: Ctx) -> Response:
    return await _editor(ctx, body=None, error=None)


async def _editor(ctx: Ctx, body: str | None, error: str | None, status: int = 200) -> Response:
    try:
        state = await ctx.db(service.editing, _key(ctx))
    except ActionRefused as exc:
        return ctx.console.error(ctx, 404, "No such template", str(exc))
    current = state["template"]
    text = body if body is not None else (current["body"] if current else "")
    preview = await ctx.db(service.preview, _key(ctx), text) if text.strip() else None
    return ctx.render("template_edit.html", status, title=f"Template {state['key']}", t=state, body=text,
                      error=error, preview=preview)


async def save(ctx: Ctx) -> Response:
    body = str(ctx.form.get("body") or "").strip()
    language = str(ctx.form.get("language") or "").strip() or None
    try:
        saved = await ctx.db(service.save, ctx.actor, _key(ctx), body, language=language,
                             default_language=ctx.console.settings.default_language)
    except ActionRefused as exc:
        return await _editor(ctx, body=body, error=str(exc), status=422)
    ctx.flash(f"Template {_key(ctx)} {'created' if saved['created'] else 'saved' if saved['changed'] else 'unchanged'}.",
              "ok")
    return ctx.redirect(f"/templates/{_key(ctx)}")


async def preview(ctx: Ctx) -> Response:
    """The live preview: a fragment with the message for sample data, or why it would be refused."""
    try:
        service.check_key(_key(ctx))
    except ActionRefused as exc:
        return ctx.render("_template_preview.html", preview={"ok": False, "error": str(exc)})
    body = str(ctx.form.get("body") or "")
    shown = await ctx.db(service.preview, _key(ctx), body) if body.strip() else None
    return ctx.render("_template_preview.html", preview=shown)


async def toggle(ctx: Ctx) -> Response:
    active = ctx.form.get("active") == "1"
    try:
        await ctx.db(service.set_active, ctx.actor, _key(ctx), active)
        ctx.flash(f"Template {_key(ctx)} is {'active' if active else 'inactive'} now.", "ok")
    except ActionRefused as exc:
        ctx.flash(str(exc), "error")
    back = f"/templates/{_key(ctx)}" if ctx.form.get("back") == "edit" else "/templates"  # never a URL from the form
    return ctx.redirect(back)


async def delete(ctx: Ctx) -> Response:
    try:
        await ctx.db(service.delete, ctx.actor, _key(ctx))
    except ActionRefused as exc:
        ctx.flash(str(exc), "error")
        return ctx.redirect(f"/templates/{_key(ctx)}")
    ctx.flash(f"Template {_key(ctx)} deleted (its history is kept).", "ok")
    return ctx.redirect("/templates")


ADMIN = Role.ADMIN
PAGE = Page(
    routes=[get("/templates", listing, role=ADMIN), get("/templates/{key}", edit, role=ADMIN),
            post("/templates/{key}", save, role=ADMIN),
            post("/templates/{key}/preview", preview, role=ADMIN), post("/templates/{key}/active", toggle, role=ADMIN),
            post("/templates/{key}/delete", delete, role=ADMIN)],
    nav=[NavEntry("Templates", "/templates", role=ADMIN, order=40)],
)
