"""Dead letters: the CLI's filters, and replay or purge of one item, a selection, or everything
the filter matches. A bulk action first shows its dry-run count and asks (an htmx step that
swaps a confirmation in; without JavaScript it is a page of its own), then reports what it did.
Every button calls the same service as ``wanotify dead replay|purge``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.responses import Response

from wanotify.ops.admin import dead_letters as service
from wanotify.ops.admin.errors import ActionRefused
from wanotify.ops.web.console.acting import admin_action, counted
from wanotify.ops.web.console.kit import Ctx, NavEntry, Page, get, post

FILTERS = ("kind", "reason", "template", "older_than")
KINDS = ("all", "messages", "events")
SHOWN = 200
BULK_LIMIT = 1000  # as `wanotify dead replay --all` (its --limit default)
DONE = {"replay": "replayed", "purge": "purged"}


@dataclass(frozen=True)
class Selection:
    """What the user looked at or chose: the filter fields as given, and the service's filter."""

    fields: dict[str, str]
    dead_filter: service.DeadFilter
    problems: list[str]

    @property
    def query(self) -> str:
        kept = {k: v for k, v in self.fields.items() if v}
        return f"?{urlencode(kept)}" if kept else ""


def _selection(values: ImmutableMultiDict[str, str] | FormData, ids: tuple[str, ...] = ()) -> Selection:
    fields = {k: str(values.get(k) or "").strip() for k in FILTERS}
    problems = []
    older_than = None
    if fields["older_than"]:
        try:
            older_than = service.parse_age(fields["older_than"])
        except ValueError as exc:
            problems.append(str(exc))
    if fields["reason"]:
        try:
            service.parse_reason(fields["reason"])
        except ValueError as exc:
            problems.append(str(exc))
    kind = fields["kind"] if fields["kind"] in KINDS else "all"
    chosen = service.DeadFilter(ids=ids, kind=kind, reason=fields["reason"] or None,
                                template=fields["template"] or None, older_than=older_than)
    return Selection(fields, chosen, problems)


async def listing(ctx: Ctx) -> Response:
    selection = _selection(ctx.request.query_params)
    rows = [] if selection.problems else await ctx.db(service.list_dead, selection.dead_filter, SHOWN)
    return ctx.render("dead.html", title="Dead letters", rows=rows, s=selection, kinds=KINDS, shown=SHOWN,
                      message_reasons=service.MESSAGE_REASONS, event_reasons=service.EVENT_REASONS)


def _chosen(ctx: Ctx) -> tuple[str, str, Selection]:
    """(action, scope, selection) from a bulk form: ``do`` is ``replay:selected``, ``purge:all``…"""
    action, _, scope = str(ctx.form.get("do") or "").partition(":")
    if action not in DONE or scope not in ("selected", "all", "one"):
        raise ActionRefused("unknown action: use the page's buttons")
    ids: tuple[str, ...] = ()
    if scope != "all":
        try:
            ids = tuple(service.parse_id(str(v)) for v in ctx.form.getlist("id"))
        except ValueError as exc:
            raise ActionRefused(str(exc)) from None
        if not ids:
            raise ActionRefused("select at least one dead letter first")
    selection = _selection(ctx.form, ids)
    if selection.problems:
        raise ActionRefused("; ".join(selection.problems))
    return action, scope, selection


def _dry_run(session: Session, chosen: service.DeadFilter, action: str) -> dict[str, int]:
    service.refuse_unknown(session, chosen, "done")
    return service.count_dead(session, chosen, BULK_LIMIT, replay=action == "replay")


async def confirm(ctx: Ctx) -> Response:
    """The dry run: how many the action would take, and a button to go ahead."""
    try:
        action, scope, selection = _chosen(ctx)
        counts = await ctx.db(_dry_run, selection.dead_filter, action)
    except ActionRefused as exc:
        return _confirm_page(ctx, error=str(exc))
    return _confirm_page(ctx, action=action, scope=scope, s=selection, counts=counts,
                         ids=list(selection.dead_filter.ids), total=sum(counts.values()), limit=BULK_LIMIT)


def _confirm_page(ctx: Ctx, **values: object) -> Response:
    defaults: dict[str, object] = {"error": None, "action": "", "scope": "", "s": None, "counts": {}, "ids": [],
                                   "total": 0, "limit": BULK_LIMIT}
    template = "_dead_confirm.html" if ctx.request.headers.get("hx-request") else "dead_confirm.html"
    return ctx.render(template, 200, title="Confirm", **(defaults | values))


async def apply(ctx: Ctx) -> Response:
    """Do it, then report how many were done (on the list, as a note)."""
    try:
        action, _scope, selection = _chosen(ctx)
        outcome = await admin_action(ctx, action, selection.dead_filter, BULK_LIMIT)
    except ActionRefused as exc:
        ctx.flash(str(exc), "error")
        return ctx.redirect("/dead" + _selection(ctx.form).query)
    ctx.flash(counted(outcome.counts, DONE[action]).capitalize() + ".", "ok")
    return ctx.redirect("/dead" + selection.query)


PAGE = Page(
    routes=[get("/dead", listing), post("/dead/confirm", confirm), post("/dead/apply", apply)],
    nav=[NavEntry("Dead letters", "/dead", order=30)],
)
