"""The part of ``wanotify status`` about what Meta said: the numbers' quality and messaging limit,
and every mapped template that is not APPROVED (its messages are parked until it is)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from wanotify.shared.meta_state import not_approved, number_needs_attention, number_states, template_states


def collect_meta(session: Session) -> dict[str, Any]:
    templates = template_states(session)
    return {"numbers": number_states(session), "templates_mapped": len(templates),
            "templates_not_approved": not_approved(templates)}


def render_meta(meta: dict[str, Any]) -> list[str]:
    """Lines for the text status; none when Meta has said nothing and nothing is mapped."""
    lines = [_number_line(number) for number in meta["numbers"]]
    if meta["templates_not_approved"]:
        lines.append(f"templates not approved ({len(meta['templates_not_approved'])} of {meta['templates_mapped']} "
                     "mapped; their messages wait or are parked):")
        lines += [_template_line(t) for t in meta["templates_not_approved"]]
    elif meta["templates_mapped"]:
        lines.append(f"templates: all {meta['templates_mapped']} mapped Meta templates APPROVED")
    return ["", *lines] if lines else []


def _number_line(number: dict[str, Any]) -> str:
    warning = "  <- needs attention" if number_needs_attention(number) else ""
    limit = number["messaging_limit"] or "unknown"
    lowered = " (LOWERED)" if number["limit_lowered"] else ""
    return (f"number {number['phone_number']}: quality {number['quality'] or 'unknown'}, "
            f"messaging limit {limit}{lowered}{warning}")


def _template_line(template: dict[str, Any]) -> str:
    reason = f" — {template['reason']}" if template["reason"] else ""
    return f"  {template['template']}: {template['meta_name']} ({template['language']}) {template['status']}{reason}"
