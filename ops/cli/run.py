"""Long-running processes: ``run notifier|sender|all`` and ``fake-provider``."""

from __future__ import annotations

import asyncio

import click

from consumers.runner import ROLES, run_roles
from ops.cli.common import emit, settings_from
from shared.errors import ConfigError


def register(main: click.Group) -> None:
    main.add_command(run)
    main.add_command(fake_provider)
    main.add_command(demo)
    main.add_command(webhook)


@click.command()
@click.argument("role", type=click.Choice([*ROLES, "all"]))
@click.pass_context
def run(ctx: click.Context, role: str) -> None:
    """Run a consumer until SIGINT/SIGTERM, then stop cleanly.

    \b
    notifier  events -> validated, rendered, logged messages on the send queue
    sender    send queue -> WhatsApp API, one call at a time, SEND_GAP_SECONDS apart
    all       both in one process
    """
    roles = list(ROLES) if role == "all" else [role]
    try:
        asyncio.run(run_roles(settings_from(ctx), roles))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("fake-provider")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=int)
def fake_provider(host: str, port: int) -> None:
    """A local server that answers like the WhatsApp Cloud API and prints what it receives.

    Point the sender at it with WHATSAPP_PROVIDER=meta and WHATSAPP_API_BASE_URL=http://HOST:PORT
    (any WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN). For demos and tests only.
    """
    from ops.fake_provider import serve

    serve(host, port)


@click.command()
@click.option("--members", default=5, show_default=True, type=click.IntRange(1, 100),
              help="How many members register at the same moment.")
@click.option("--gap", type=click.FloatRange(min=0), default=None,
              help="Override SEND_GAP_SECONDS for the demo (default: the configured gap, 10 s).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON at the end.")
@click.pass_context
def demo(ctx: click.Context, members: int, gap: float | None, as_json: bool) -> None:
    """Live demo: members register at once; watch payment links overtake welcomes, a gap apart.

    Runs the notifier and the sender in this process against a local fake WhatsApp provider,
    in the namespace WANOTIFY_NAMESPACE-demo so it never touches real queues. Creates and
    migrates the database if needed.
    """
    from ops.demo import run_demo

    settings = settings_from(ctx)
    settings = settings.with_(namespace=f"{settings.namespace}-demo",
                              send_gap_seconds=settings.send_gap_seconds if gap is None else gap)
    summary = run_demo(settings, members)
    if as_json:
        emit(summary, True, "")


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.pass_context
def webhook(ctx: click.Context, host: str, port: int) -> None:
    """Receive WhatsApp Cloud API status webhooks: sent messages move to delivered / read.

    Needs WHATSAPP_VERIFY_TOKEN (the subscription handshake) and WHATSAPP_APP_SECRET (payload
    signatures). Runs until SIGINT/SIGTERM.
    """
    import signal
    import threading

    from consumers.webhook import WebhookServer
    from shared.db.engine import make_engine, session_factory

    settings = settings_from(ctx)
    token, secret = settings.whatsapp.verify_token, settings.whatsapp.app_secret
    if not token or not secret:
        raise click.ClickException("set WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET to receive webhooks")
    engine = make_engine(settings.database_url)
    server = WebhookServer((host, port), token, secret, session_factory(engine))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: threading.Thread(target=server.shutdown).start())
    click.echo(f"webhook listening on http://{host}:{server.server_address[1]}/", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        engine.dispose()
