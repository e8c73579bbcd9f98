"""Chart descriptions for ``static/console.js`` (uPlot), built from the services' series.

A description is plain JSON in a ``data-chart`` attribute: x values, named series, and how
to draw them. The script only draws; every number is computed here.
"""

from __future__ import annotations

from typing import Any

LABELS = {"sent": "sent", "failed": "failed", "dead": "dead"}


def activity(series: dict[str, Any]) -> dict[str, Any]:
    """Sent, failed and dead per slot (hour or day), with time on the x axis (seconds since the epoch)."""
    return {"x": [int(at.timestamp()) for at in series["at"]], "bars": True, "time": True, "height": 190,
            "series": [{"key": key, "label": label, "values": series[key]} for key, label in LABELS.items()]}


def gaps(distribution: dict[str, Any]) -> dict[str, Any]:
    """How many gaps fell in each bin (seconds on the x axis, the bin's lower edge)."""
    return {"x": distribution["edges"], "bars": True, "time": False, "x_format": " s", "height": 190,
            "series": [{"key": "gaps", "label": "calls", "values": distribution["counts"]}]}
