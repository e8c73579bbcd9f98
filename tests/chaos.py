"""Chaos: kills and service restarts while events are in flight, with an exact account after.

One run publishes ``events`` events with the provider failing 30% of calls (HTTP 503), then, at
random moments, SIGKILLs senders (each replaced at once) and the notifier (restarted), and
restarts RabbitMQ and PostgreSQL. When every message is ``sent`` or ``dead`` (or the drain
deadline passes) it accounts for everything:

- lost: events that never became a row; stuck: rows not ``sent``/``dead`` at the deadline;
- dead rows and why, each checked against the faults injected (out of retries after
  MAX_RETRIES + 1 failed calls to that recipient);
- duplicate calls (a recipient called successfully more than once), which must be none, and
  the messages parked "outcome unknown" (a sender died during their call: sending them again
  could duplicate) against the kills that landed mid-call (the killed sender had a ``pending``
  claim): unknown <= kills mid-call.

Run it outside the test suite (it restarts the machine's local RabbitMQ and PostgreSQL):

    python -m tests.chaos --runs 20 [--events 300] [--seed N] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.scenario import member
from tests.support.broker import delete_namespace
from tests.support.outages import restart_postgres, restart_rabbitmq
from tests.support.processes import Proc
from tests.support.stack import Stack
from wanotify.consumers.sender.store import OUTCOME_UNKNOWN
from wanotify.ops.fake_provider import FakeProviderServer
from wanotify.producers.publisher import EventPublisher
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import make_engine, session_factory
from wanotify.shared.db.models import Attempt, MessageLog

SENDER_KILLS = 3
DRAIN_SECONDS = 240.0  # well inside the test's own timeout, so a stuck run says what is stuck
FAILURE_RATE = 0.3
CHAOS_SETTINGS = {"send_gap_seconds": 0.03, "retry_delay_seconds": 0.5, "max_retries": 3}
SENDER_ENV = {"RETRY_SWEEP_SECONDS": 2}


@dataclass
class Result:
    seed: int
    events: int = 0
    sent: int = 0
    dead: dict[str, int] = field(default_factory=dict)  # reason -> rows
    lost: int = 0
    stuck: int = 0
    unexplained_dead: list[str] = field(default_factory=list)
    calls: int = 0
    duplicates: int = 0
    unknown: int = 0  # parked "outcome unknown": their sender died during the call
    kills_mid_call: int = 0
    drain_seconds: float | None = None
    actions: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything that breaks the delivery guarantees; empty for a good run."""
        found = []
        if self.lost:
            found.append(f"{self.lost} events lost")
        if self.stuck:
            found.append(f"{self.stuck} messages stuck")
        if self.unexplained_dead:
            found.append(f"dead rows the faults do not explain: {', '.join(self.unexplained_dead)}")
        if self.duplicates:
            found.append(f"{self.duplicates} duplicate calls")
        if self.unknown > self.kills_mid_call:
            found.append(f"{self.unknown} parked as outcome unknown, more than the {self.kills_mid_call} kills mid-call")
        return found


class Run:
    """One chaos run against a prepared database and namespace."""

    def __init__(self, settings: Settings, provider: FakeProviderServer, sessions: sessionmaker[Session],
                 seed: int, events: int, say: Callable[[str], None] = print) -> None:
        self.settings = settings.with_(**CHAOS_SETTINGS)
        self.provider = provider
        self.sessions = sessions
        self.rng = random.Random(seed)
        self.result = Result(seed=seed, events=events)
        self.stack = Stack(self.settings, provider)
        self.say = say
        self.senders: list[Proc] = []

    def __call__(self) -> Result:
        try:
            self._run()
        finally:
            self.stack.close()
        return self.result

    def _run(self) -> None:
        self.provider.set_failure_rate(FAILURE_RATE, "5xx", seed=self.result.seed)
        self.notifier = self.stack.start("notifier")
        self.senders.append(self.stack.start("sender", **SENDER_ENV))
        started = time.monotonic()
        with EventPublisher(self.settings.amqp_url, self.settings.namespace, source="chaos") as publisher:
            for i in range(self.result.events):
                publisher.publish("member.registered", member(i))
        actions = ["kill sender"] * SENDER_KILLS + ["kill notifier", "restart rabbitmq", "restart postgres"]
        self.rng.shuffle(actions)
        for action in actions:
            time.sleep(self.rng.uniform(0.5, 2.5))
            self.say(f"{time.strftime('%X')} seed {self.result.seed}: {action} "
                     f"({len(self.provider.calls())} calls so far)")
            self._act(action)
            self.result.actions.append(action)
        self._drain(started)
        self._account()

    def _act(self, action: str) -> None:
        if action == "kill sender":
            victim = self.senders[-1]
            victim.kill()
            self.result.kills_mid_call += self._pending_claims_of(victim.popen.pid)
            self.senders.append(self.stack.start("sender", **SENDER_ENV))
        elif action == "kill notifier":
            self.notifier.kill()
            self.notifier = self.stack.start("notifier")
        elif action == "restart rabbitmq":
            restart_rabbitmq()  # the consumers keep running; they reconnect by themselves
        else:
            restart_postgres()

    def _pending_claims_of(self, pid: int) -> int:
        """Messages a killed sender left ``pending``: its kill landed mid-call (0 or 1)."""
        with self.sessions() as session:
            return int(session.execute(text(
                "SELECT count(*) FROM whatsapp_logs l JOIN sender_processes p ON l.claimed_by = p.sender_id "
                "WHERE p.pid = :pid AND l.status = 'pending'"), {"pid": pid}).scalar_one())

    def _drain(self, started: float) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            rows = self._rows()
            if len(rows) == self.result.events and all(m.status in ("sent", "dead") for m in rows):
                self.result.drain_seconds = round(time.monotonic() - started, 1)
                return
            time.sleep(0.5)

    def _rows(self) -> list[MessageLog]:
        with self.sessions() as session:
            return list(session.scalars(select(MessageLog).order_by(MessageLog.id)))

    def _account(self) -> None:
        time.sleep(1.0)  # let a last in-flight call reach the provider's record
        rows, calls = self._rows(), self.provider.calls()
        r = self.result
        r.calls = len(calls)
        r.lost = r.events - len({(m.event_id, m.template) for m in rows})
        r.stuck = sum(m.status not in ("sent", "dead") for m in rows)
        r.sent = sum(m.status == "sent" for m in rows)
        r.dead = dict(Counter(self._dead_reason(m) for m in rows if m.status == "dead"))
        ok_calls = Counter(c["to"] for c in calls if c["outcome"] == "ok")
        r.duplicates = sum(n - 1 for n in ok_calls.values() if n > 1)
        r.unknown = sum(m.status == "dead" and m.error_code == OUTCOME_UNKNOWN for m in rows)
        failed_calls = Counter(c["to"] for c in calls if c["outcome"] != "ok")
        r.unexplained_dead = [f"m{m.id} ({m.error_code}: {m.last_error})" for m in rows
                              if m.status == "dead" and not self._explained(m, failed_calls)]

    def _dead_reason(self, row: MessageLog) -> str:
        if row.error_code == OUTCOME_UNKNOWN:
            return OUTCOME_UNKNOWN
        return "out_of_retries" if row.attempts > self.settings.max_retries else (row.error_code or "unknown")

    def _explained(self, row: MessageLog, failed_calls: Counter[str]) -> bool:
        """A dead row is explained by the injected 503s (every try of it failed that way) or by a
        kill mid-call (outcome unknown: counted against the kills apart)."""
        if row.error_code == OUTCOME_UNKNOWN:
            return True
        with self.sessions() as session:
            outcomes = list(session.scalars(select(Attempt.outcome).where(Attempt.log_id == row.id)))
        tries = self.settings.max_retries + 1
        return (row.error_code == "meta_2" and failed_calls[row.recipient.lstrip("+")] >= tries
                and outcomes.count("dead") == 1 and len(outcomes) >= tries)


def run_once(amqp_url: str, database_url: str, seed: int, events: int,
             say: Callable[[str], None] = print) -> Result:
    """One run in a fresh namespace, on a migrated database whose message tables are emptied."""
    namespace = f"chaos-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({}).with_(amqp_url=amqp_url, database_url=database_url, namespace=namespace)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE whatsapp_logs, whatsapp_attempts, dead_events, sender_state, "
                                "sender_processes, settings"))
    try:
        with FakeProviderServer(timeout_sleep=3.0) as provider:
            return Run(settings, provider, session_factory(engine), seed, events, say)()
    finally:
        engine.dispose()
        delete_namespace(amqp_url, namespace)


COLUMNS = ("seed", "events", "sent", "dead", "lost", "stuck", "calls", "duplicates", "unknown", "kills mid-call",
           "drain s")


def _row(r: Result) -> list[str]:
    dead = ", ".join(f"{n} {reason}" for reason, n in sorted(r.dead.items())) or "0"
    return [str(v) for v in (r.seed, r.events, r.sent, dead, r.lost, r.stuck, r.calls, r.duplicates, r.unknown,
                             r.kills_mid_call, r.drain_seconds if r.drain_seconds is not None else "-")]


def _print_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*COLUMNS, title="chaos runs")
    for r in results:
        table.add_row(*_row(r))
    Console(width=150).print(table)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="how many runs (default 5)")
    parser.add_argument("--events", type=int, default=300, help="events per run (default 300)")
    parser.add_argument("--seed", type=int, help="the first run's seed (default: random); run N uses seed+N")
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines")
    args = parser.parse_args(argv)
    from tests.support.services import migrated_database, postgres_server_url, rabbitmq_url

    first = args.seed if args.seed is not None else random.randrange(1_000_000)
    results: list[Result] = []
    with rabbitmq_url() as amqp, postgres_server_url() as server, \
            migrated_database(server, f"wanotify_chaos_{uuid.uuid4().hex[:8]}") as database_url:
        for n in range(args.runs):
            result = run_once(amqp, database_url, first + n, args.events, _to_stderr)
            results.append(result)
            verdict = "; ".join(result.problems()) or "ok"
            print(f"run {n + 1}/{args.runs} seed {result.seed}: {verdict}", file=sys.stderr)
            if args.json:
                print(json.dumps(asdict(result) | {"problems": result.problems()}), flush=True)
    if not args.json:
        _print_table(results)
    bad = [r for r in results if r.problems()]
    print(f"{len(results) - len(bad)} of {len(results)} runs kept every guarantee", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
