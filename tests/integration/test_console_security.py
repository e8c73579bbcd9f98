"""The console's protections, against a real uvicorn server: login on every route, roles on the
server, CSRF on every POST, the cookie's flags and lifetime, headers, the login throttle."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.server import PASSWORD, add_users
from tests.conftest import SESSION_ID
from tests.support.web import serve
from wanotify.ops.admin.users import Role, add_user, set_password
from wanotify.ops.web.console.kit import ConsoleRoute
from wanotify.ops.web.console.part import check, pages
from wanotify.ops.web.console.security import COOKIE, IDLE_SECONDS, MAX_AGE_SECONDS
from wanotify.ops.web.limits import Limits
from wanotify.shared.config import Settings
from wanotify.shared.db.engine import session_factory, transaction
from wanotify.shared.db.models import AuditEntry, ConsoleUser, SenderRow
from wanotify.shared.errors import ConfigError

SECRET = "s" * 40


@pytest.fixture(scope="module")
def base_url(amqp_url: str, database_url: str, engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    add_users(session_factory(engine))
    with serving(amqp_url, database_url) as url:
        yield url


@contextmanager
def serving(amqp_url: str, database_url: str) -> Iterator[str]:
    """The console alone, served by uvicorn in a thread on a free port."""
    settings = Settings.from_env({}).with_(amqp_url=amqp_url, database_url=database_url, web_secret_key=SECRET,
                                           namespace=f"wt{SESSION_ID}-console")
    with serve(settings, Limits(), CollectorRegistry(), parts=("console",)) as served:
        yield served.base


def anonymous(base_url: str) -> tuple[requests.Session, str]:
    """A browser-like session that has seen the login page: its CSRF token."""
    http = requests.Session()
    page = http.get(f"{base_url}/login", timeout=10)
    return http, _token(page.text)


def logged_in(base_url: str, role: str, password: str = PASSWORD) -> tuple[requests.Session, str]:
    http, token = anonymous(base_url)
    reply = http.post(f"{base_url}/login", data={"csrf_token": token, "username": role, "password": password},
                      allow_redirects=False, timeout=10)
    assert reply.status_code == 303, reply.text
    return http, _token(http.get(f"{base_url}/", timeout=10).text)


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def routes() -> list[ConsoleRoute]:
    return [r for page in pages() for r in page.routes if not r.public]


def concrete(path: str) -> str:
    """A route's path with its parameters filled in (``{id:int}`` -> 1, ``{name}`` -> nobody)."""
    return re.sub(r"\{[^}:]+:int\}", "1", re.sub(r"\{[^}:]+\}", "nobody", path))


def test_the_console_refuses_to_start_without_a_long_enough_secret() -> None:
    with pytest.raises(ConfigError, match="WEB_SECRET_KEY"):
        check(Settings.from_env({}))
    with pytest.raises(ConfigError, match="too short"):
        check(Settings.from_env({"WEB_SECRET_KEY": "short"}))
    check(Settings.from_env({"WEB_SECRET_KEY": SECRET}))


def test_every_route_but_the_login_page_needs_a_login(base_url: str) -> None:
    http, token = anonymous(base_url)
    for route in routes():
        url = base_url + concrete(route.path)
        if "GET" in route.methods:
            reply = http.get(url, allow_redirects=False, timeout=10)
            assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next="), route.path
        else:
            assert http.post(url, data={"csrf_token": token}, allow_redirects=False, timeout=10).status_code == 403, \
                route.path
    assert http.get(f"{base_url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_every_route_refuses_a_role_below_its_own_even_with_a_valid_token(base_url: str, role: str) -> None:
    http, token = logged_in(base_url, role)
    above = [r for r in routes() if r.role > Role.parse(role)]
    assert above, "there are routes above this role"
    for route in above:
        url = base_url + concrete(route.path)
        method = "GET" if "GET" in route.methods else "POST"
        reply = http.request(method, url, data={"csrf_token": token}, allow_redirects=False, timeout=10)
        assert reply.status_code == 403, f"{role} {method} {route.path}: {reply.status_code}"


def test_every_post_without_a_valid_csrf_token_is_refused(base_url: str) -> None:
    http, token = logged_in(base_url, "admin")
    other_token = logged_in(base_url, "operator")[1]
    for route in [r for r in routes() if "POST" in r.methods]:
        url = base_url + concrete(route.path)
        for data in ({}, {"csrf_token": ""}, {"csrf_token": other_token}):
            assert http.post(url, data=data, allow_redirects=False, timeout=10).status_code == 403, (route.path, data)
    assert http.put(f"{base_url}/", timeout=10).status_code == 403
    assert http.delete(f"{base_url}/users", timeout=10).status_code == 403
    assert http.post(f"{base_url}/logout", headers={"X-CSRF-Token": token}, allow_redirects=False,
                     timeout=10).status_code == 303


def test_every_response_carries_the_security_headers(base_url: str) -> None:
    http = logged_in(base_url, "viewer")[0]
    for path in ("/login", "/", "/overview/live", "/static/console.css", "/static/vendor/htmx.min.js", "/no-such-page"):
        headers = http.get(base_url + path, timeout=10).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path


def test_the_session_cookie_is_httponly_strict_and_secure_only_over_https(base_url: str) -> None:
    cookie = requests.get(f"{base_url}/login", timeout=10).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    # Behind a TLS proxy on the same host (a trusted one: FORWARDED_ALLOW_IPS, 127.0.0.1 by default)
    proxied = requests.get(f"{base_url}/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "Secure" in proxied.headers["set-cookie"]


def test_a_changed_password_or_a_removed_user_ends_open_sessions(base_url: str, engine) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(engine)
    http, _ = logged_in(base_url, "operator")
    assert http.get(f"{base_url}/", allow_redirects=False, timeout=10).status_code == 200
    with transaction(sessions) as session:
        set_password(session, "operator", "a brand new password")
    assert http.get(f"{base_url}/", allow_redirects=False, timeout=10).status_code == 303
    add_users(sessions)  # the accounts as the other tests expect them


@pytest.mark.parametrize("age", ["idle", "too old"])
def test_an_idle_or_too_old_session_ends(base_url: str, age: str) -> None:
    http, _ = logged_in(base_url, "viewer")
    signer = URLSafeTimedSerializer(SECRET, salt="wanotify-console-session")
    data = signer.loads(http.cookies[COOKIE])
    if age == "idle":
        class Earlier(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - IDLE_SECONDS - 5
        cookie = URLSafeTimedSerializer(SECRET, salt="wanotify-console-session", signer=Earlier).dumps(data)
    else:
        cookie = signer.dumps({**data, "login_at": time.time() - MAX_AGE_SECONDS - 5})
    http.cookies.clear()
    http.cookies.set(COOKIE, cookie)
    assert http.get(f"{base_url}/", allow_redirects=False, timeout=10).status_code == 303
    http.cookies.clear()
    http.cookies.set(COOKIE, signer.dumps(data))
    assert http.get(f"{base_url}/", allow_redirects=False, timeout=10).status_code == 200


def test_a_cookie_signed_with_another_key_is_no_session(base_url: str) -> None:
    http, _ = logged_in(base_url, "admin")
    data = URLSafeTimedSerializer(SECRET, salt="wanotify-console-session").loads(http.cookies[COOKIE])
    http.cookies.clear()
    http.cookies.set(COOKIE, URLSafeTimedSerializer("x" * 40, salt="wanotify-console-session").dumps(data))
    assert http.get(f"{base_url}/", allow_redirects=False, timeout=10).status_code == 303


def test_logins_are_throttled_per_user_name_even_for_the_right_password(base_url: str, engine) -> None:  # type: ignore[no-untyped-def]
    with transaction(session_factory(engine)) as session:
        session.execute(delete(ConsoleUser).where(ConsoleUser.username == "target"))
        add_user(session, "target", Role.VIEWER, PASSWORD)
    http, token = anonymous(base_url)
    for _ in range(5):
        reply = http.post(f"{base_url}/login", data={"csrf_token": token, "username": "target", "password": "wrong one"},
                          allow_redirects=False, timeout=10)
        assert reply.status_code == 401
    reply = http.post(f"{base_url}/login", data={"csrf_token": token, "username": "target", "password": PASSWORD},
                      allow_redirects=False, timeout=10)
    assert reply.status_code == 429 and "Too many failed logins" in reply.text
    logged_in(base_url, "viewer")  # other names from the same address still may (until 20 failures)


def test_the_login_never_redirects_to_another_site(base_url: str) -> None:
    http, token = anonymous(base_url)
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/messages", "/messages")):
        reply = http.post(f"{base_url}/login", data={"csrf_token": token, "username": "viewer", "password": PASSWORD,
                                                     "next": target}, allow_redirects=False, timeout=10)
        assert reply.headers["location"] == expected
        http, token = anonymous(base_url)


def test_a_user_added_in_the_console_is_in_the_audit_log_under_the_admins_name(base_url: str, engine) -> None:  # type: ignore[no-untyped-def]
    sessions: sessionmaker[Session] = session_factory(engine)
    with transaction(sessions) as session:
        session.execute(delete(ConsoleUser).where(ConsoleUser.username == "newbie"))
    http, token = logged_in(base_url, "admin")
    reply = http.post(f"{base_url}/users/add", data={"csrf_token": token, "username": "newbie", "role": "viewer",
                                                     "password": "z" * 12, "password2": "z" * 12}, timeout=10)
    assert reply.status_code == 200 and "Added viewer newbie" in reply.text
    with sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (entry.actor, entry.action, entry.count) == ("admin", "user.add", 1)
    assert entry.target == {"user": "newbie", "role": "viewer"}
    assert "user.add" in http.get(f"{base_url}/audit", timeout=10).text


def test_with_the_broker_down_the_overview_says_so_and_shows_the_database_figures(database_url: str) -> None:
    with serving("amqp://guest:guest@127.0.0.1:1/", database_url) as url:
        http, _ = logged_in(url, "viewer")
        page = http.get(f"{url}/", timeout=30)
    assert page.status_code == 200
    assert "RabbitMQ is unreachable" in page.text and 'id="stat-waiting"' in page.text
    assert "Unknown: RabbitMQ is unreachable." in page.text


def test_with_the_database_down_a_page_says_so_in_one_line(amqp_url: str) -> None:
    with serving(amqp_url, "postgresql+psycopg2://postgres@127.0.0.1:1/wanotify") as url:
        http, token = anonymous(url)
        reply = http.post(f"{url}/login", data={"csrf_token": token, "username": "viewer", "password": PASSWORD},
                          timeout=30)
    assert reply.status_code == 503 and "The database is unreachable" in reply.text


@pytest.fixture
def a_sender(engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with transaction(session_factory(engine)) as session:
        session.add(SenderRow(name="wt-bad-input", provider="fake", settings={}))
    yield "wt-bad-input"
    with transaction(session_factory(engine)) as session:
        session.execute(delete(SenderRow).where(SenderRow.name == "wt-bad-input"))


@pytest.mark.parametrize(("method", "path", "form", "said"), [
    ("get", "/?refresh=inf", None, "Overview"),
    ("get", "/?refresh=1e400", None, "Overview"),
    ("get", "/messages?after=%C2%B2", None, "Messages"),
    ("get", "/messages?after=99999999999999999999", None, "Messages"),
    ("get", "/audit?before=%C2%B2", None, "Audit"),
    ("get", "/dead?older_than=99999999999d", None, "more than ten years"),
    ("post", "/dead/confirm", {"do": "purge:all", "older_than": "9999999999d"}, "more than ten years"),
    ("get", "/dead?reason=bogus", None, "is not a reason items are parked with"),
    ("post", "/dead/confirm", {"do": "purge:all", "reason": "bogus"}, "is not a reason items are parked with"),
    ("post", "/actions/clear", {"confirm": "\u00b2"}, "Type the number of waiting messages"),
    ("post", "/senders/{sender}/pause", {"duration": "100000000d"}, "more than ten years"),
    ("post", "/senders/{sender}/pause", {"duration": "0s"}, "a pause needs a duration above 0"),
    ("post", "/senders/{sender}/set", {"daily_limit": "99999999999999999999"}, "1 to 1,000,000"),
    ("post", "/senders/{sender}/set", {"warmup": "250,99999999999"}, "1 to 1,000,000"),
    ("post", "/templates/welcome_new_member", {"body": "Halo {{ name }}", "language": "not a lang!!"},
     "not a language code"),
])
def test_bad_input_gets_a_clear_answer_not_a_server_error(base_url: str, a_sender: str, method: str, path: str,
                                                          form: dict[str, str] | None, said: str) -> None:
    http, token = logged_in(base_url, "admin")
    url = base_url + path.format(sender=a_sender)
    reply = http.get(url, timeout=10) if method == "get" else http.post(url, data={"csrf_token": token, **(form or {})},
                                                                         timeout=10)
    assert reply.status_code < 500, reply.text[:300]
    assert said in reply.text
