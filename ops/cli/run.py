"""Long-running processes: ``run notifier|sender|all|web`` and ``fake-provider``."""

from __future__ import annotations

import asyncio
import sys

import click

from wanotify.consumers.runner import ROLES, run_roles
from wanotify.ops.cli.common import emit, settings_from
from wanotify.ops.cli.copies import Copies
from wanotify.ops.cli.errors import ConfigFailure
from wanotify.shared.config import Settings
from wanotify.shared.errors import ConfigError

ROLE_HELP = {
    "notifier": "The notifier: events -> validated, rendered, logged messages on the send queue.",
    "sender": "The sender: send queue -> WhatsApp API, one call at a time, SEND_GAP_SECONDS apart.",
    "all": "Every consumer in one process.",
}


@click.group()
def run() -> None:
    """Run a long-lived process until SIGINT/SIGTERM, then stop cleanly."""


def _role_command(role: str) -> click.Command:
    @click.command(role, help=ROLE_HELP.get(role, f"The {role} consumer."))
    @click.pass_context
    def command(ctx: click.Context, processes: int = 1) -> None:
        if processes > 1:
            sys.exit(Copies(role, processes).run())
        roles = list(ROLES) if role == "all" else [role]
        # A sender needs a provider: sender rows name theirs, else WHATSAPP_PROVIDER must (the runner
        # checks once the database answers). A ConfigError reaches the user as one line, exit code 2.
        asyncio.run(run_roles(settings_from(ctx), roles))
    if role == "notifier":
        command = click.option(
            "--processes", type=click.IntRange(1, 64), default=1, show_default=True,
            help="Run N notifier processes (where there are cores); events may be logged slightly out of "
                 "arrival order. Child k serves metrics on METRICS_PORT+k.")(command)
    return command


for _role in (*ROLES, "all"):
    run.add_command(_role_command(_role))


@run.command("web")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--only", metavar="PARTS", help="Comma-separated parts to serve (default: all): webhook, api, console.")
@click.pass_context
def web(ctx: click.Context, host: str, port: int, only: str | None) -> None:
    """The web server: the admin console at /, the HTTP API at /api/v1, WhatsApp status webhooks at
    /webhooks/whatsapp, and /healthz.

    Needs WEB_SECRET_KEY when it serves the console, and WHATSAPP_VERIFY_TOKEN and
    WHATSAPP_APP_SECRET when it serves the webhook (--only leaves parts out). Runs until
    SIGINT/SIGTERM.
    """
    _serve_web(settings_from(ctx), host, port, only)


def _serve_web(settings: Settings, host: str, port: int, only: str | None, legacy_root: bool = False) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    from wanotify.ops.web.app import create_app, select_parts
    from wanotify.ops.web.limits import Limits
    from wanotify.ops.web.server import listen, serve
    from wanotify.ops.web.webhook import at_root

    registry = CollectorRegistry()
    try:
        parts = select_parts(only)
        app = create_app(settings, parts, registry=registry)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    try:
        sock = listen(host, port)
    except OSError as exc:  # the port is taken, privileged or not on this host: configuration (exit 2)
        raise ConfigFailure(f"cannot listen on {host}:{port}: {exc.strerror or exc} — choose a free port (--port) "
                            "or stop the process that holds it") from None
    bound = sock.getsockname()[1]
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, registry=registry)
    click.echo(f"web: serving {', '.join(parts)} on http://{host}:{bound}/ (health: /healthz)", err=True)
    serve(at_root(app) if legacy_root else app, Limits.from_settings(settings), sock)


@click.command("fake-provider")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=click.IntRange(0, 65535))
@click.option("--strict", is_flag=True, help="Like the real Cloud API: text only inside a recipient's window "
              "(POST /_fake/window), templates only once registered (POST /_fake/templates).")
def fake_provider(host: str, port: int, strict: bool) -> None:
    """A local server that answers like the WhatsApp Cloud API and prints what it receives.

    Point the sender at it with WHATSAPP_PROVIDER=meta and WHATSAPP_API_BASE_URL=http://HOST:PORT
    (any WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN). For demos and tests only.
    """
    from wanotify.ops.fake_provider import serve

    serve(host, port, strict=strict)


@click.command()
@click.option("--members", default=5, show_default=True, type=click.IntRange(1, 100),
              help="How many members register at the same moment.")
@click.option("--gap", type=click.FloatRange(min=0), default=None,
              help="The gap for the demo (default: SEND_GAP_SECONDS, 10 s); a stored setting does not change it.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON at the end.")
@click.pass_context
def demo(ctx: click.Context, members: int, gap: float | None, as_json: bool) -> None:
    """Live demo: members register at once; watch payment links overtake welcomes, a gap apart.

    Runs the notifier and the sender in this process against a local fake WhatsApp provider,
    in the namespace WANOTIFY_NAMESPACE-demo and a database of its own (DATABASE_URL's name
    with _demo), so it never touches real queues or counts. Both are removed at the end.
    """
    from wanotify.ops.demo import demo_settings, run_demo

    summary = run_demo(demo_settings(settings_from(ctx), gap), members)
    if as_json:
        emit(summary, True, "")


@click.command(hidden=True)
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def webhook(ctx: click.Context, host: str, port: int) -> None:
    """Deprecated: use `wanotify run web --only webhook`.

    Kept for existing deployments: the same server, on the old default address, also
    answering at / (the old path) besides /webhooks/whatsapp.
    """
    click.echo("wanotify webhook is deprecated: running `wanotify run web --only webhook` "
               f"--host {host} --port {port} (it also answers at /, the old path)", err=True)
    _serve_web(settings_from(ctx), host, port, "webhook", legacy_root=True)
