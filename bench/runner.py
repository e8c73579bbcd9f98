"""Running the chosen scenarios one after the other and writing what they measured."""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import machine, plot, report
from bench.config import DEFAULT_OUT, FULL, QUICK
from bench.env import RUN_ID
from bench.scenarios import ORDER, Context, runner

console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


def run_suite(names: list[str], out_dir: Path, *, quick: bool, profile: bool, readme: bool = False) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if quick else FULL
    ctx = Context(sizes, out_dir, profile=profile, quick=quick)
    results: dict[str, Any] = {"run_id": RUN_ID, "quick": quick, "profile": profile, "machine": machine.describe(),
                               "sizes": asdict(sizes), "scenarios": ctx.done}
    began = time.monotonic()
    for name in names:
        console.print(f"[bold]▶ {name}[/] …")
        start = time.monotonic()
        try:
            result = runner(name)(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not lose the others
            console.print(f"[red]{name} failed: {exc!r}[/]")
            result = {"error": traceback.format_exc(), "metrics": {},
                      "goals": [{"label": "scenario ran", "value": None, "goal": "no error", "met": False}]}
        result["seconds"] = round(time.monotonic() - start, 1)
        # Other work on the machine (a test suite, a broker restart) blurs the numbers: keep a trace.
        result["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
        ctx.done[name] = result
        report.write_json(results, out_dir / "partial.json")  # what is done so far, should the run be cut short
        met = sum(g["met"] for g in result.get("goals", []))
        console.print(f"  done in {result['seconds']} s; goals met {met}/{len(result.get('goals', []))}")
    results["seconds"] = round(time.monotonic() - began, 1)
    _drop_database()
    results["summary"] = _summary(ctx.done)
    _write(results, out_dir, readme)
    report.print_report(results, console)
    return results


def _drop_database() -> None:
    """Leave nothing behind: the scenarios recreate ``wanotify_bench`` whenever they need it."""
    from bench.config import DATABASE_URL
    from wanotify.shared.db.engine import drop_database

    try:
        drop_database(DATABASE_URL)
    except Exception as exc:  # noqa: BLE001 - only housekeeping
        console.print(f"[yellow]could not drop the bench database: {exc!r}[/]")


def _summary(done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    goals = [(name, g) for name, r in done.items() for g in r.get("goals", [])]
    return {"met": sum(g["met"] for _, g in goals), "total": len(goals),
            "missed": [f"{name}: {g['label']}" for name, g in goals if not g["met"]]}


def _write(results: dict[str, Any], out_dir: Path, readme: bool = False) -> None:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if results["quick"] else "")
    report.write_json(results, out_dir / "latest.json")
    report.write_json(results, out_dir / f"run-{stamp}.json")
    try:
        plot.draw(results, out_dir / "latest.png")
    except Exception as exc:  # noqa: BLE001 - the numbers are already written
        console.print(f"[yellow]could not draw latest.png: {exc!r}[/]")
    console.print(f"results: {out_dir / 'latest.json'}, {out_dir / 'latest.png'}")
    # Only a full run into the default folder speaks for the README: of every scenario, or of the
    # ones chosen with --readme (the cluster scenarios need a private cluster not every machine has).
    complete = set(results["scenarios"]) == set(ORDER) or readme
    if not results["quick"] and complete and out_dir == DEFAULT_OUT.resolve():
        readme = Path(__file__).resolve().parent.parent / "README.md"
        if report.update_readme(results, readme, "bench/results/latest.png"):
            console.print(f"updated the benchmark section of {readme}")
