"""9. console_queries: the console's overview and phone search on a million-row message log.

A scratch database (``wanotify_bench``, recreated) gets 1,000,000 message rows from ONE
``INSERT … SELECT generate_series`` (60 days of history: 90 % sent/delivered/read, 3 % dead,
1 % failed, the rest queued — 60,000 waiting — over 200,000 recipients; the activity trigger
counts them as they go in) and 200,000 call attempts, then ``VACUUM ANALYZE``. Then, 50 times
each (after 3 warm-up calls): the overview's service function (every query the page runs
against the database) and a search by phone written in local form, timed in the process, and
the same two pages over HTTP from ``wanotify run web --only console`` (a logged-in session).
Every statement the two make is then run under ``EXPLAIN (ANALYZE, BUFFERS)``; the plans are
saved to ``console_plans.txt`` next to the results, and a sequential scan of the message log
counts as a missed goal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import requests
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from bench import stats
from bench.config import DATABASE_URL
from bench.env import fresh_database, namespace, process_env, settings
from bench.procs import Proc
from bench.scenarios import Context, goal
from wanotify.ops.admin import messages, overview
from wanotify.ops.admin.users import Role, add_user
from wanotify.shared.db.engine import make_engine, session_factory, transaction

ROWS, ATTEMPTS, RECIPIENTS, REQUESTS, WARM_UP = 1_000_000, 200_000, 200_000, 50, 3
GOAL_MS = 100
PHONE_LOCAL = "0811-2000-1234"  # recipient +6281120001234, which has 5 messages

GENERATE = """
INSERT INTO whatsapp_logs (event_id, event_type, template, recipient, body, priority, status, attempts,
                           sent_at, created_at, queued_at, updated_at)
SELECT gen_random_uuid(), 'member.registered',
       (ARRAY['welcome_new_member','payment_link','payment_success','commission_received'])[1 + i % 4],
       '+62811' || (20000000 + i % :recipients)::text, 'Halo, pesan nomor ' || i,
       (ARRAY['normal','high','normal','low'])[1 + i % 4],
       CASE WHEN i > :rows - :waiting THEN 'queued' WHEN i % 100 < 3 THEN 'dead' WHEN i % 100 = 3 THEN 'failed'
            WHEN i % 3 = 0 THEN 'read' WHEN i % 3 = 1 THEN 'delivered' ELSE 'sent' END,
       1, CASE WHEN i <= :rows - :waiting THEN at END, at, at, at
FROM (SELECT i, now() - interval '60 days' + i * interval '60 days' / :rows AS at
      FROM generate_series(1, :rows) AS i) AS s
"""
ATTEMPT_ROWS = """
INSERT INTO whatsapp_attempts (log_id, attempt, started_at, finished_at, outcome)
SELECT id, 1, sent_at, sent_at + interval '200 milliseconds', 'sent' FROM whatsapp_logs
WHERE sent_at IS NOT NULL ORDER BY id DESC LIMIT :n
"""


def run(ctx: Context) -> dict[str, Any]:
    fresh_database()
    engine = make_engine(DATABASE_URL)
    try:
        built = _generate(engine)
        s = settings(namespace("console"))
        sessions = session_factory(engine)
        query = messages.parse_query({"phone": PHONE_LOCAL}, s.default_region)
        in_process = {"overview": _time(lambda: _in(sessions, lambda se: overview.overview(se, s))),
                      "search": _time(lambda: _in(sessions, lambda se: messages.search(se, query)))}
        found = len(_in(sessions, lambda se: messages.search(se, query))["rows"])
        over_http = _over_http(ctx, s, sessions)
        plans = _plans(engine, sessions, lambda se: (overview.overview(se, s), messages.search(se, query)))
    finally:
        engine.dispose()
    (ctx.out_dir / "console_plans.txt").write_text(plans["text"])
    return _result(built, in_process, over_http, plans, found)


def _generate(engine: Engine) -> dict[str, float]:
    began = time.monotonic()
    with engine.begin() as conn:
        conn.execute(text(GENERATE), {"rows": ROWS, "waiting": 60_000, "recipients": RECIPIENTS})
    inserted = time.monotonic() - began
    with engine.begin() as conn:
        conn.execute(text(ATTEMPT_ROWS), {"n": ATTEMPTS})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return {"insert_seconds": round(inserted, 1), "total_seconds": round(time.monotonic() - began, 1)}


def _in(sessions: Any, work: Callable[[Session], Any]) -> Any:
    with transaction(sessions) as session:
        return work(session)


def _time(call: Callable[[], Any]) -> dict[str, float]:
    for _ in range(WARM_UP):
        call()
    took = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        call()
        took.append(time.perf_counter() - began)
    return {name: round(v * 1000, 2) for name, v in
            (("p50_ms", stats.percentile(took, 50)), ("p95_ms", stats.percentile(took, 95)), ("max_ms", max(took)))
            if v is not None}


def _over_http(ctx: Context, s: Any, sessions: Any) -> dict[str, dict[str, float]]:
    with transaction(sessions) as session:
        add_user(session, "bench", Role.VIEWER, "bench password 123")
    env = process_env(s, WEB_SECRET_KEY="b" * 48)
    server = Proc("console", ["-m", "wanotify.ops.cli", "run", "web", "--only", "console", "--port", "0"], env, ctx.log_dir)
    try:
        port = int(re.findall(r"http://127\.0\.0\.1:(\d+)/", server.wait_for_log("web: serving"))[0])
        http = _logged_in(f"http://127.0.0.1:{port}")
        base = f"http://127.0.0.1:{port}"
        return {"overview": _time(lambda: _get(http, f"{base}/overview/live?refresh=off")),
                "search": _time(lambda: _get(http, f"{base}/messages?phone={PHONE_LOCAL}"))}
    finally:
        server.stop()


def _logged_in(base: str) -> requests.Session:
    http = requests.Session()
    token = re.findall(r'name="csrf_token" value="([^"]+)"', http.get(f"{base}/login", timeout=10).text)[0]
    reply = http.post(f"{base}/login", data={"csrf_token": token, "username": "bench", "password": "bench password 123"},
                      timeout=10)
    reply.raise_for_status()
    return http


def _get(http: requests.Session, url: str) -> None:
    http.get(url, timeout=10).raise_for_status()


@contextmanager
def _recording(engine: Engine) -> Any:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _plans(engine: Engine, sessions: Any, work: Callable[[Session], Any]) -> dict[str, Any]:
    with _recording(engine) as statements:
        _in(sessions, work)
    texts, seq_scans, worst = [], 0, 0.0
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters))
            seq_scans += len(re.findall(r"Seq Scan on whatsapp_logs\b", plan))
            worst = max(worst, float(re.findall(r"Execution Time: ([\d.]+) ms", plan)[0]))
            texts.append(f"{statement}\n{parameters}\n{plan}\n")
    return {"text": "\n".join(texts), "statements": len(statements), "seq_scans": seq_scans, "slowest_ms": worst}


def _result(built: dict[str, float], in_process: dict[str, Any], over_http: dict[str, Any], plans: dict[str, Any],
            found: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {"rows": ROWS, "attempts": ATTEMPTS, **built, "phone_search_found": found,
                               "statements": plans["statements"], "slowest_statement_ms": plans["slowest_ms"],
                               "seq_scans_on_message_log": plans["seq_scans"]}
    for where, timings in (("service", in_process), ("http", over_http)):
        for page, summary in timings.items():
            metrics[f"{where}_{page}_p50_ms"] = summary["p50_ms"]
            metrics[f"{where}_{page}_p95_ms"] = summary["p95_ms"]
    return {"metrics": metrics, "goals": [
        goal("overview p95 (ms), 1M rows, HTTP", over_http["overview"]["p95_ms"], "<", GOAL_MS),
        goal("phone search p95 (ms), 1M rows, HTTP", over_http["search"]["p95_ms"], "<", GOAL_MS),
        goal("phone search finds the recipient's messages", found, "==", 5),
        goal("sequential scans of the message log", plans["seq_scans"], "==", 0)]}
