"""Broadcasts from the command line, with the notifier and the sender running as a user runs them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.e2e.scenario import payment_link
from tests.e2e.test_cli import one_error_line, run_cli
from tests.support.processes import wait_until
from wanotify.ops.cli.broadcast import PROGRESS_FROM_BYTES
from wanotify.shared.db.models import AuditEntry, MessageLog

TEMPLATE = "broadcast_promo"
BODY = "Halo {{ name }}, promo {{ code }} untuk Anda!"
ROWS = 1000
# Line numbers (the header is line 1) of the rows the notifier would refuse, and why.
BAD = {
    17: "12345",  # too short to be a number
    101: "abc",
    250: "",  # no number at all
    333: "+1 555",
    480: "0000000000",
    512: "08",
    640: "tel:0811",
    777: "62",
    901: "999999999999999999",
    999: "hello",
}


def recipient(line: int) -> str:
    return f"0811{4000000 + line:07d}"


def write_csv(path: Path) -> Path:
    lines = ["phone,name,code"]
    for line in range(2, ROWS + 2):
        lines.append(f"{BAD.get(line, recipient(line))},Member {line},P{line}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # No recipient interval and a short gap, so the broadcast moves quickly; speed is not asserted.
    return settings.with_(recipient_interval_seconds=0.0, send_gap_seconds=0.2)


@pytest.fixture
def template(stack, engine):  # type: ignore[no-untyped-def]
    stack.cli("templates", "set", TEMPLATE, "--body", BODY)
    yield TEMPLATE
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM broadcasts"))
        conn.execute(text("DELETE FROM template_history WHERE template_key = :k"), {"k": TEMPLATE})
        conn.execute(text("DELETE FROM templates WHERE key = :k"), {"k": TEMPLATE})


def cli_json(stack, *args: str) -> Any:  # type: ignore[no-untyped-def]
    return json.loads(stack.cli(*args, "--json"))


def logged(sessions, broadcast_id: int) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalar(select(func.count()).where(MessageLog.broadcast_id == broadcast_id)) or 0


def link_logged_at(sessions, payment_url: str) -> float:  # type: ignore[no-untyped-def]
    """When the notifier's transaction that wrote the payment link's row began (Unix time)."""
    with sessions() as session:
        created = session.scalar(select(MessageLog.created_at).where(MessageLog.template == "payment_link",
                                                                      MessageLog.body.contains(payment_url)))
    assert created is not None
    return created.timestamp()


def test_a_thousand_rows_with_ten_bad_ones_queue_990_once_and_a_payment_link_overtakes_them(
        stack, template, publisher, fake_provider, sessions, tmp_path):
    csv = str(write_csv(tmp_path / "members.csv"))
    create = ("broadcast", "create", "--template", template, "--csv", csv)

    # Given a dry run: the bad rows are counted exactly, with their lines, and nothing is queued.
    dry = cli_json(stack, *create, "--dry-run")
    assert (dry["rows"], dry["valid"], dry["invalid"], dry["duplicates"]) == (ROWS, 990, 10, 0)
    assert sorted(row["line"] for row in dry["invalid_rows"]) == sorted(BAD)
    assert [p["text"] for p in dry["previews"]] == [f"Halo Member {n}, promo P{n} untuk Anda!" for n in (2, 3, 4)]
    # One sender, a 0.2 s gap, no daily limit: the first call at once, then 989 gaps.
    assert dry["eta_seconds"] == pytest.approx(197.8, abs=0.05)
    assert cli_json(stack, "broadcast", "list") == []

    # When it runs for real, twice, while the notifier and the sender run.
    stack.start("notifier")
    stack.start("sender")
    first = cli_json(stack, *create)
    assert (first["queued"], first["already_queued"]) == (990, 0)
    broadcast_id = first["broadcast_id"]
    wait_until(lambda: logged(sessions, broadcast_id) == 990, 60, "the notifier to log all 990 rows")
    second = cli_json(stack, *create)
    assert (second["broadcast_id"], second["queued"], second["already_queued"]) == (broadcast_id, 0, 990)

    # Then a payment link published mid-broadcast goes next on the (one) number.
    fake_provider.wait_for_calls(10, timeout=30)
    before = len(fake_provider.calls())
    link = payment_link(7)
    publisher.publish("payment.link_created", link)
    wait_until(lambda: any(link["payment_url"] in (c["body"] or "") for c in fake_provider.calls()), 30,
               "the payment link's call")
    calls = fake_provider.calls()
    at = next(i for i, c in enumerate(calls) if link["payment_url"] in (c["body"] or ""))
    # Broadcast calls that went once the notifier had started writing the payment link's row: one
    # may start while its command reaches the send queue, and one may already have been chosen.
    # (Counted from the row, not from the publish: how long the notifier takes is the machine's pace.)
    logged_at = link_logged_at(sessions, link["payment_url"])
    overtaken = sum(1 for c in calls[before:at] if c["t"] >= logged_at)
    assert overtaken <= 2, f"{overtaken} broadcast calls went after the payment link was queued and before it"
    wait_until(lambda: len(fake_provider.calls()) > at + 3, 30, "the broadcast to go on after the payment link")
    print(f"\nmeasured: dry run {dry['valid']} valid / {dry['invalid']} invalid; runs queued {first['queued']} then "
          f"{second['queued']} ({second['already_queued']} already queued); payment link went after {overtaken} "
          f"broadcast call(s) once it was queued, as call {at + 1} of {len(calls)}")

    # And cancelling stops the rest: the count adds up, no waiting row is left, the sender stops.
    cancelled = cli_json(stack, "broadcast", "cancel", str(broadcast_id))
    assert cancelled["cancelled"] > 0  # how many had gone by then depends on the machine's pace
    assert cancelled["cancelled"] + cancelled["already_sent"] + cancelled["in_flight"] + cancelled["dead"] == 990
    assert cancelled["not_yet_logged"] == 0
    shown = cli_json(stack, "broadcast", "show", str(broadcast_id))
    assert shown["by_status"]["cancelled"] == cancelled["cancelled"]
    assert shown["by_status"]["queued"] == shown["by_status"]["failed"] == shown["not_yet_logged"] == 0
    stopped_at = len(fake_provider.calls())
    with pytest.raises(AssertionError):  # nothing more goes out but the call that was in flight
        wait_until(lambda: len(fake_provider.calls()) > stopped_at + 1, 1.5, "another call")
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "broadcast.cancel")).all()
    # (the audit log is not emptied between tests: other broadcasts' cancels may be there)
    [entry] = [e for e in entries if e.target == {"broadcast_id": broadcast_id}]
    assert entry.count == cancelled["cancelled"]
    print(f"measured: cancel stopped {cancelled['cancelled']}; {cancelled['already_sent']} had gone")


def test_list_and_show_report_a_broadcasts_progress(stack, template, sessions, tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("phone,name,code\n08114040701,Ani,A\n08114040702,Budi,B\n", encoding="utf-8")
    stack.start("notifier")  # no sender: the messages stay queued
    created = cli_json(stack, "broadcast", "create", "--template", template, "--csv", str(path))
    wait_until(lambda: logged(sessions, created["broadcast_id"]) == 2, 30, "both rows logged")
    [listed] = cli_json(stack, "broadcast", "list")
    assert (listed["id"], listed["name"], listed["valid"], listed["waiting"], listed["sent"]) == (
        created["broadcast_id"], "few.csv", 2, 2, 0)
    shown = cli_json(stack, "broadcast", "show", str(created["broadcast_id"]))
    assert shown["by_status"]["queued"] == 2 and shown["eta_seconds"] > 0
    assert list(shown["by_status"]) == ["queued", "pending", "sent", "delivered", "read", "failed", "dead", "cancelled"]
    with sessions() as session:
        priorities = set(session.scalars(select(MessageLog.priority).where(MessageLog.broadcast_id == created["broadcast_id"])))
    assert priorities == {"low"}
    assert f"broadcast {created['broadcast_id']}: few.csv" in stack.cli("broadcast", "show", str(created["broadcast_id"]))


def test_a_cancel_before_the_notifier_has_the_rows_says_how_many_are_on_their_way(stack, template, tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("phone,name,code\n08114040701,Ani,A\n08114040702,Budi,B\n", encoding="utf-8")
    created = cli_json(stack, "broadcast", "create", "--template", template, "--csv", str(path))  # no notifier runs
    broadcast_id = str(created["broadcast_id"])
    assert cli_json(stack, "broadcast", "cancel", broadcast_id) == {
        "broadcast_id": created["broadcast_id"], "cancelled": 0, "already_sent": 0, "in_flight": 0, "dead": 0,
        "not_yet_logged": 2}
    assert "2 rows had not reached the notifier yet" in stack.cli("broadcast", "cancel", broadcast_id)
    again = run_cli(stack, "broadcast", "create", "--template", template, "--csv", str(path))
    assert again.returncode == 1 and "and cancelled at" in one_error_line(again)


@pytest.mark.parametrize(("content", "options", "error"), [
    (None, (), "does not exist — check the path to the CSV file"),
    ("phone,name,code\n0811,A,B\n", ("--template", "no_such_template"), "template 'no_such_template' does not exist"),
    ("nomor,name,code\n0811,A,B\n", (), "has no 'phone' column"),
    ("phone,name\n0811,A\n", (), "the template uses code, which list.csv has no column for"),
    ("", (), "list.csv is empty"),
    (b"phone,name,code\n0811,Andr\xe9,B\n", (), "list.csv is not UTF-8 text: line 2"),
    ("phone,name,code\n0811,A,B\n", ("--sender", "nobody"), "there is no active sender 'nobody'"),
])
def test_bad_input_is_refused_in_one_line_that_says_what_to_do(stack, template, tmp_path, content, options, error):
    path = tmp_path / "list.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    args = ("--template", template, *options) if "--template" not in options else options
    done = run_cli(stack, "broadcast", "create", "--csv", str(path), *args, "--dry-run")
    assert done.returncode == 1 and error in one_error_line(done)


def test_an_unknown_broadcast_is_named(stack, template):
    done = run_cli(stack, "broadcast", "cancel", "424242")
    assert done.returncode == 1 and "there is no broadcast 424242" in one_error_line(done)


def run_on_terminal(stack, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Run a command with its stderr on a pseudo-terminal (as at an admin's shell); its exit code and stderr."""
    controller, terminal = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "wanotify.ops.cli", *args], env=stack.env(COLUMNS="100"),
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal) as proc:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the command closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(60)
    os.close(controller)
    return code, b"".join(chunks).decode(errors="replace")


def test_a_large_file_shows_a_progress_bar_on_a_terminal_and_nothing_when_piped(stack, template, tmp_path):
    path = tmp_path / "large.csv"
    padding = "x" * 80  # long rows: a large file in few rows, so the test stays short
    path.write_text("phone,name,code\n" + "".join(f"{recipient(n)},Member {n},{padding}\n" for n in range(800)),
                    encoding="utf-8")
    assert path.stat().st_size > PROGRESS_FROM_BYTES
    create = ("broadcast", "create", "--template", template, "--csv", str(path), "--dry-run")
    code, shown = run_on_terminal(stack, *create)
    assert code == 0 and "checking" in shown and "━" in shown
    piped = run_cli(stack, *create)
    assert piped.returncode == 0 and piped.stderr == "" and "800 valid" in piped.stdout
