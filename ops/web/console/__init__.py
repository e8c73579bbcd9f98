"""The admin console (``wanotify run web`` serves it at ``/``): Starlette, Jinja2, htmx.

How a page module plugs in
==========================

Every module of this package that defines ``PAGE`` is a console page; nothing else needs
editing (``part.pages()`` finds it). A module looks like this::

    from starlette.responses import Response

    from wanotify.ops.admin import dead_letters            # the service layer: the CLI calls the same functions
    from wanotify.ops.admin.audit import record
    from wanotify.ops.admin.users import Role
    from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post

    async def listing(ctx: Ctx) -> Response:
        rows = await ctx.db(dead_letters.list_dead, dead_letters.DeadFilter())   # fn(session, ...) in a thread
        return ctx.render("dead.html", title="Dead letters", rows=rows)

    async def purge(ctx: Ctx) -> Response:
        ids = ctx.form.getlist("id")                  # the form is parsed, and its CSRF token checked, already
        n = await ctx.db(purge_ids, ids, actor=ctx.actor)   # ...which calls record(session, actor, "dead.purge", ...)
        ctx.flash(f"Purged {n} item(s).", "ok")
        return ctx.redirect("/dead")                  # 303 (or HX-Redirect for an htmx request)

    PAGE = Page(
        routes=[get("/dead", listing), post("/dead/purge", purge)],          # post(): operator by default
        nav=[NavEntry("Dead letters", "/dead", order=30)],
    )

- **Routes**: ``get(path, handler, role=Role.VIEWER)`` and ``post(path, handler,
  role=Role.OPERATOR)`` (``wanotify.ops.web.console.kit``). A handler is ``async def h(ctx: Ctx) ->
  Response``. Before it runs, the server has checked the login (a page redirects to
  ``/login``, a POST gets 403) and the role (403 below ``role``); a POST's CSRF token is
  checked before routing (``csrf.CsrfGuard``), for every route. Path parameters are in
  ``ctx.request.path_params``, the query in ``ctx.request.query_params``.
- **Roles** (``wanotify.ops.admin.users.Role``): VIEWER reads, OPERATOR acts (replay, purge, retry,
  pause, send test, clear queue), ADMIN edits templates, settings, users. Give every action
  route its role; hide its buttons with ``{% if user.can_act %}`` / ``{% if user.is_admin %}``
  in the template — hiding is for looks, the route's role is the check.
- **Nav**: ``NavEntry(label, path, role=Role.VIEWER, order=50)``; shown to that role and up,
  left to right by ``order``: overview 10, messages 20, dead letters 30, templates 40,
  settings 50, actions 60, users 80, audit 90.
- **Database**: ``await ctx.db(fn, *args)`` runs ``fn(session, *args)`` in one transaction on a
  worker thread — call service functions (``ops/admin/*``), never write SQL in a route.
- **Audit**: an action records itself with ``wanotify.ops.admin.audit.record(session, actor, action,
  target=..., count=..., detail=...)`` inside its own transaction (the CLI passes
  ``audit.cli_actor()``, the console ``ctx.actor``); an action outside the database (a broker
  purge) calls ``await ctx.audit(action, target=..., count=...)`` once it is done. Action
  names are dotted: ``dead.replay``, ``queue.clear``, ``template.set``, ``sender.pause``.
  The Audit page lists them.
- **Templates** go in ``templates/`` and extend the layout: ``{% extends "base.html" %}``
  and fill ``{% block content %}``. ``ctx.render(name, title=..., **values)`` adds ``user``,
  ``nav``, ``csrf_token``, ``flashes`` and ``fragment`` (true for an htmx request). Small
  macros are in ``macros.html`` (``ui`` in every template and fragment: ``ui.stat``, ``ui.badge``,
  ``ui.action(url, label, csrf_token, kind="danger")`` — a POST form with the token —,
  ``ui.csrf(csrf_token)``, ``ui.empty``). Filters: ``dt`` (UTC time), ``duration`` (seconds),
  ``number``, ``masked`` (a phone number: never show one unmasked). Keep templates
  logic-free: compute in the service or the handler.
- **htmx**: a live fragment is a route that renders a partial template (no ``extends``);
  htmx sends the CSRF token as ``X-CSRF-Token`` on its own requests (set on ``<body>``).
  No inline script or style: the Content-Security-Policy forbids them; the console's one
  script of its own is ``static/console.js`` (charts).
- **Feedback**: ``ctx.flash(text, kind)`` (info, ok, warn, error) shows on the next page;
  ``ctx.console.error(ctx, status, title, text)`` renders an error page.
- **Tests**: ``tests/browser/conftest.py`` has the fixtures (a server per test module, one
  user per role, a logged-in page per role); see its docstring.
"""
