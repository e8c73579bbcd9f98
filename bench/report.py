"""The results as a table (rich) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# The figures shown per scenario besides its goals: (label, path into "metrics").
KEY_FIGURES: dict[str, list[tuple[str, str]]] = {
    "broker_ceiling": [("publish msgs/s (confirms)", "publish_msgs_per_s"), ("consume msgs/s (acks)", "consume_msgs_per_s"),
                       ("pipe msgs/s (consume+publish)", "pipe_msgs_per_s"), ("ceiling msgs/s", "ceiling_msgs_per_s")],
    "ingest": [("events", "events"), ("overall events/s", "overall_events_per_s"),
               ("sustained events/s / pipe ceiling msgs/s", "sustained_events_per_s|pipe_ceiling_msgs_per_s"),
               ("share of the publish/consume ceiling", "share_of_ceiling"),
               ("--processes 2: sustained / while publishing / after events/s",
                "processes_2.sustained_events_per_s|processes_2.while_publishing_events_per_s|"
                "processes_2.after_publishing_events_per_s"),
               ("--processes 2: notifier RSS MB (both and the parent)", "processes_2.notifier_peak_rss_mb"),
               ("while publishing / after events/s", "while_publishing_events_per_s|after_publishing_events_per_s"),
               ("notifier queue peak depth", "notifier_queue_peak"),
               ("publisher events/s", "publisher_events_per_s"), ("notifier RSS MB", "notifier_peak_rss_mb")],
    "pacing": [("50 ms: lateness p50/p99/max ms", "fast.lateness_p50_ms|fast.lateness_p99_ms|fast.lateness_max_ms"),
               ("50 ms: min gap ms / earliest by ms / early by > 1 ms",
                "fast.min_gap_ms|fast.earliest_ms|fast.early_by_over_1ms"),
               ("10 s: lateness p50/p99/max ms", "default.lateness_p50_ms|default.lateness_p99_ms|default.lateness_max_ms"),
               ("10 s: min gap ms / earliest by ms / early by > 1 ms",
                "default.min_gap_ms|default.earliest_ms|default.early_by_over_1ms")],
    "sender_rate": [("interval p50/p99 ms", "interval_p50_ms|interval_p99_ms"),
                    ("round trips in each call's transactions", "db_per_call_transactions"),
                    ("sender RSS MB", "sender_peak_rss_mb"),
                    ("sender CPU ms per call / PostgreSQL sessions opened", "sender_cpu_ms_per_call|pg_sessions_opened")],
    "pool_scale": [("steady window s / ideal calls/s", "steady_window_s|ideal_calls_per_s"),
                   ("early calls in all / min gap of any number ms", "early_calls_total|min_gap_ms"),
                   ("DB round trips per call", "db_round_trips_per_call"),
                   ("sender CPU ms per call / PostgreSQL sessions opened", "sender_cpu_ms_per_call|pg_sessions_opened")],
    "million": [("rows inserted s / commands published s (msgs/s)", "insert_seconds|publish_seconds|publish_msgs_per_s"),
                ("waiting highs sent first", "waiting_high_first"),
                ("live high latencies s", "live_high_latencies_s"),
                ("live highs: other calls between publish and call / s after the call before",
                 "live_high_calls_between|live_high_after_previous_call_s"),
                ("status answers s / backlog it saw", "status_seconds|status_backlog_seen"),
                ("status parts s: broker, database connection, statements", "status_parts_s"),
                ("wanotify status --json as a process s (start-up included)", "status_cli_process_s")],
    "dramatiq_peer": [("bucket ×2: early calls / calls", "bucket.early|bucket.calls"),
                      ("bucket ×2: min gap ms / calls/s", "bucket.min_gap_ms|bucket.calls_per_s"),
                      ("mutex ×2: early calls / calls", "mutex.early|mutex.calls"),
                      ("mutex ×2: min gap ms / calls/s", "mutex.min_gap_ms|mutex.calls_per_s"),
                      ("wanotify 50 ms: early / min gap ms / calls/s",
                       "wanotify.early|wanotify.min_gap_ms|wanotify.calls_per_s")],
    "peer_restart": [(f"{name}: gap across the restart s / early / min gap s",
                      f"{key}.gap_across_restart_s|{key}.early|{key}.min_gap_s")
                     for name, key in (("wanotify", "wanotify"), ("celery", "celery"),
                                       ("dramatiq bucket", "dramatiq_bucket"), ("dramatiq mutex", "dramatiq_mutex"))],
    "idle_latency": [("latency p50/max ms", "latency_p50_ms|latency_max_ms"), ("warm-up call ms", "warm_up_latency_ms")],
    "backlog": [("backlog messages", "events"), ("seconds to enqueue", "seconds_to_enqueue_all"),
                ("sustained events/s", "sustained_events_per_s"), ("live high latency max ms", "live_high_latency_max_ms"),
                ("normal calls before a live high (max)", "normal_calls_before_live_high_max")],
    "celery_peer": [("celery ×2: early calls / calls", "workers_2.early|workers_2.calls"),
                    ("celery ×2: min gap ms / calls/s", "workers_2.min_gap_ms|workers_2.calls_per_s"),
                    ("celery ×2: stalls > 10 gaps / calls and calls/s before the first",
                     "workers_2.stalls|workers_2.calls_before_first_stall|workers_2.calls_per_s_before_first_stall"),
                    ("celery ×1: early calls / calls", "workers_1.early|workers_1.calls"),
                    ("celery ×1: min gap ms / calls/s", "workers_1.min_gap_ms|workers_1.calls_per_s"),
                    ("celery ×1: stalls > 10 gaps / calls and calls/s before the first",
                     "workers_1.stalls|workers_1.calls_before_first_stall|workers_1.calls_per_s_before_first_stall"),
                    ("wanotify 50 ms: early / min gap ms / calls/s",
                     "wanotify.early|wanotify.min_gap_ms|wanotify.calls_per_s")],
    "webhook_abuse": [("bad requests: seconds / statuses", "bad_seconds|bad_statuses"),
                      ("valid receipt latencies ms", "valid_latency_ms"),
                      ("server RSS baseline MB", "server_rss_baseline_mb")],
    "cluster_failover": [("classic: longest stall from the node kill to its return s / down s",
                          "classic.node_stall_max_s|classic_down_s"),
                         ("quorum: stall at the leader kill / any node event s",
                          "quorum.stall_at_kill_s|quorum.node_stall_max_s"),
                         ("stall at the sender kill s (classic / quorum)",
                          "classic.stall_at_sender_kill_s|quorum.stall_at_sender_kill_s"),
                         ("duplicates / kills mid-call (classic)", "classic.duplicates|classic.kills_mid_call"),
                         ("duplicates / kills mid-call (quorum)", "quorum.duplicates|quorum.kills_mid_call"),
                         ("drain s (classic / quorum)", "classic.drain_s|quorum.drain_s"),
                         ("publishes refused and retried (classic / quorum)",
                          "classic.publish_retries|quorum.publish_retries"),
                         ("min gap s (classic / quorum)", "classic.min_gap_s|quorum.min_gap_s")],
    "cluster_cost": [("ingest events/s (classic / quorum)", "classic.ingest.events_per_s|quorum.ingest.events_per_s"),
                     ("quorum ingest as a share of classic", "quorum_ingest_share_of_classic"),
                     ("idle latency p50/p99 ms (classic)", "classic.idle.latency_p50_ms|classic.idle.latency_p99_ms"),
                     ("idle latency p50/p99 ms (quorum)", "quorum.idle.latency_p50_ms|quorum.idle.latency_p99_ms")],
}


def lookup(metrics: dict[str, Any], path: str) -> str:
    values = []
    for part in path.split("|"):
        value: Any = metrics
        for key in part.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        values.append("–" if value is None else f"{value:g}" if isinstance(value, float) else str(value))
    return " / ".join(values)


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, bool | None]]:
    """(scenario, measure, value, goal, met) for every goal and key figure; met is None for figures."""
    out: list[tuple[str, str, str, str, bool | None]] = []
    for name, result in results["scenarios"].items():
        if "error" in result:
            out.append((name, "error", result["error"].splitlines()[-1][:80], "", False))
            continue
        out += [(name, g["label"], _fmt(g["value"]), g["goal"], g["met"]) for g in result.get("goals", [])]
        out += [(name, label, lookup(result["metrics"], path), "", None) for label, path in KEY_FIGURES.get(name, [])]
    return out


def table(results: dict[str, Any]) -> Table:
    out = Table(title="wanotify benchmarks", show_lines=False)
    for column in ("scenario", "measure", "value", "goal", ""):
        out.add_column(column)
    previous = None
    for name, measure, value, goal, met in rows(results):
        if previous is not None and name != previous:
            out.add_section()
        mark = "" if met is None else "[green]✓[/]" if met else "[red]✗[/]"
        out.add_row(name if name != previous else "", measure if met is not None else f"[dim]{measure}[/]", value,
                    goal, mark)
        previous = name
    return out


README_START = "<!-- bench:start (written by python -m bench; do not edit by hand) -->"
README_END = "<!-- bench:end -->"


def update_readme(results: dict[str, Any], readme: Path, image: str) -> bool:
    """Replace the README's benchmark section with this run's table; False if it has no markers."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return False
    m = results["machine"]
    lines = [
        README_START,
        f"Measured {m['when'][:16].replace('T', ' ')} UTC on {m['cpu_model']}, {m['logical_cores']} cores, "
        f"{m['memory_gib']} GiB; Python {m['python']}, RabbitMQ {m['rabbitmq']}, PostgreSQL {m['postgresql']} "
        f"(all on one machine; code {m.get('code_digest', '?')}).",
        "",
        "| scenario | measure | value | goal | |",
        "|---|---|---|---|---|",
    ]
    previous = None
    for name, measure, value, goal, met in rows(results):
        mark = "" if met is None else "✓" if met else "✗"
        lines.append(f"| {name if name != previous else ''} | {measure} | {value} | {goal} | {mark} |")
        previous = name
    lines += ["", f"![gap distribution and ingest rate]({image})", README_END]
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    readme.write_text(text[:start] + "\n".join(lines) + text[end:], encoding="utf-8")
    return True


def print_report(results: dict[str, Any], console: Console) -> None:
    m = results["machine"]
    console.print(f"[bold]Machine[/]: {m['cpu_model']}, {m['logical_cores']} cores, {m['memory_gib']} GiB, "
                  f"Python {m['python']}, RabbitMQ {m['rabbitmq']}, PostgreSQL {m['postgresql']}")
    console.print(table(results))
    for name, result in results["scenarios"].items():
        for process, prof in (result.get("profile") or {}).items():
            if not prof.get("inclusive"):
                continue
            console.print(f"[bold]{name} / {process}[/] ({prof.get('kind')} profile, {prof.get('samples')} samples, "
                          f"flame graph {prof.get('svg')}): " + "; ".join(
                              f"{h['function']} {h['percent']}%" for h in prof["inclusive"][:6]))
    s = results["summary"]
    console.print(f"goals met: {s['met']}/{s['total']}" + (f"; missed: {', '.join(s['missed'])}" if s["missed"] else ""))


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, default=str))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)
