"""Users (admins only): the accounts, a new one, a role changed, one removed — the same service
functions as ``wanotify users``, each change in the audit log."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.responses import Response

from wanotify.ops.admin import audit
from wanotify.ops.admin.users import Role, UserError, add_user, list_users, remove_user, set_role
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post


async def listing(ctx: Ctx) -> Response:
    users = await ctx.db(list_users)
    return ctx.render("users.html", title="Users", users=users, roles=[r.label for r in Role])


async def add(ctx: Ctx) -> Response:
    name, role = str(ctx.form.get("username", "")).strip(), str(ctx.form.get("role", ""))
    password = str(ctx.form.get("password", ""))
    if password != ctx.form.get("password2"):
        ctx.flash("The two passwords differ.", "error")
        return ctx.redirect("/users")
    return await _change(ctx, _add, name, role, password, done=f"Added {role} {name}.")


async def change_role(ctx: Ctx) -> Response:
    name, role = ctx.request.path_params["name"], str(ctx.form.get("role", ""))
    return await _change(ctx, _set_role, name, role, done=f"{name} is now {role}.")


async def remove(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    if ctx.user is not None and name == ctx.user.name:
        ctx.flash("You cannot remove yourself: another admin can.", "error")
        return ctx.redirect("/users")
    return await _change(ctx, _remove, name, done=f"Removed {name}.")


async def _change(ctx: Ctx, change, *args: str, done: str) -> Response:  # type: ignore[no-untyped-def]
    try:
        await ctx.db(change, ctx.actor, *args)
    except UserError as exc:
        ctx.flash(str(exc), "error")
    else:
        ctx.flash(done, "ok")
    return ctx.redirect("/users")


def _add(session: Session, actor: str, name: str, role: str, password: str) -> None:
    add_user(session, name, Role.parse(role), password)
    audit.record(session, actor, "user.add", target={"user": name, "role": role}, count=1)


def _set_role(session: Session, actor: str, name: str, role: str) -> None:
    set_role(session, name, Role.parse(role))
    audit.record(session, actor, "user.set_role", target={"user": name, "role": role}, count=1)


def _remove(session: Session, actor: str, name: str) -> None:
    remove_user(session, name)
    audit.record(session, actor, "user.remove", target={"user": name}, count=1)


PAGE = Page(
    routes=[get("/users", listing, role=Role.ADMIN), post("/users/add", add, role=Role.ADMIN),
            post("/users/{name}/role", change_role, role=Role.ADMIN),
            post("/users/{name}/remove", remove, role=Role.ADMIN)],
    nav=[NavEntry("Users", "/users", role=Role.ADMIN, order=80)],
)
