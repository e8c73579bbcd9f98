"""The console's commands as a user runs them: `wanotify users …` and `run web` serving the console."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.processes import Proc, run_wanotify, wanotify_env
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import AuditEntry, ConsoleUser


def wanotify(settings: Settings, *args: str, stdin: str = "", **extra: object) -> subprocess.CompletedProcess[str]:
    return run_wanotify(args, wanotify_env(settings, "http://127.0.0.1:9", **extra), stdin)


@pytest.fixture
def no_test_users(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(sessions) as session:
        session.execute(delete(ConsoleUser).where(ConsoleUser.username.like("cli-%")))
    return sessions


def test_users_are_added_listed_changed_and_removed_from_the_command_line(settings, no_test_users) -> None:  # type: ignore[no-untyped-def]
    added = wanotify(settings, "users", "add", "cli-ana", "--role", "operator", "--password-stdin",
                     stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    listed = json.loads(wanotify(settings, "users", "list", "--json").stdout)
    assert {"username": "cli-ana", "role": "operator"}.items() <= next(u for u in listed if u["username"] == "cli-ana").items()

    changed = wanotify(settings, "users", "set-password", "cli-ana", "--password-stdin", stdin="another long password\n")
    assert changed.returncode == 0, changed.stderr
    assert wanotify(settings, "users", "remove", "cli-ana").returncode == 0
    assert "cli-ana" not in wanotify(settings, "users", "list").stdout

    with no_test_users() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.target["user"].astext == "cli-ana")
                                  .order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["user.add", "user.set_password", "user.remove"]
    assert all(e.actor.startswith("cli:") for e in entries)
    assert all("password" not in json.dumps(e.target) for e in entries)


def test_the_password_is_asked_twice_and_never_taken_from_the_command_line(settings, no_test_users) -> None:  # type: ignore[no-untyped-def]
    mismatch = wanotify(settings, "users", "add", "cli-bo", "--role", "viewer",
                        stdin="a long enough password\nsomething else entirely\n")
    assert mismatch.returncode != 0
    prompted = wanotify(settings, "users", "add", "cli-bo", "--role", "viewer",
                        stdin="a long enough password\na long enough password\n")
    assert prompted.returncode == 0, prompted.stderr
    assert "Repeat the password" in prompted.stdout + prompted.stderr
    argv = wanotify(settings, "users", "add", "cli-cy", "--role", "viewer", "--password", "a long enough password")
    assert argv.returncode == 2 and "No such option" in argv.stderr


@pytest.mark.parametrize(("args", "stdin", "says"), [
    (["users", "add", "cli-dee", "--role", "viewer", "--password-stdin"], "short\n", "too short"),
    (["users", "add", "cli dee", "--role", "viewer", "--password-stdin"], "a long enough password\n", "invalid user name"),
    (["users", "remove", "cli-nobody"], "", "no user 'cli-nobody'"),
    (["users", "add", "cli-dee", "--role", "boss", "--password-stdin"], "a long enough password\n", "'boss'"),
])
def test_a_wrong_users_command_says_what_is_wrong_in_one_line(settings, no_test_users, args, stdin, says) -> None:  # type: ignore[no-untyped-def]
    done = wanotify(settings, *args, stdin=stdin)
    assert done.returncode in (1, 2)
    assert says in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error:")


def test_run_web_refuses_to_serve_the_console_without_web_secret_key(settings) -> None:  # type: ignore[no-untyped-def]
    done = wanotify(settings, "run", "web", "--only", "console", "--port", "0", WEB_SECRET_KEY=None)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Error: the console needs WEB_SECRET_KEY")


def test_run_web_serves_the_console_and_health_and_stops_on_sigterm(settings, sessions) -> None:  # type: ignore[no-untyped-def]
    env = wanotify_env(settings, "http://127.0.0.1:9", WEB_SECRET_KEY="k" * 48)
    proc = Proc(["run", "web", "--only", "console", "--port", "0"], env, ready="web: serving", name="web")
    try:
        url = proc.log().split("on ", 1)[1].split()[0].rstrip("/")
        assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok", "parts": ["console"]}
        login = requests.get(f"{url}/", timeout=5)
        assert login.url.endswith("/login?next=/") and "Log in" in login.text
        assert proc.terminate() == 0
    finally:
        proc.close()
