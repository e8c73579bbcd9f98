"""Publishing as an upstream system would: ``publish`` and ``send-test``."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from pydantic import ValidationError

from ops.cli.common import emit, json_option, parse_json_object, settings_from
from producers.publisher import EventPublisher
from shared.errors import InvalidEvent
from shared.phone import normalize_phone


def register(main: click.Group) -> None:
    main.add_command(publish)
    main.add_command(send_test)


def _publish(ctx: click.Context, event_type: str, data: dict, event_id: str | None, source: str) -> str:  # type: ignore[type-arg]
    settings = settings_from(ctx)
    try:
        # One try: the connection is new, so retrying it only delays the one-line answer.
        with EventPublisher(settings.amqp_url, settings.namespace, source=source, reconnect_attempts=0) as publisher:
            return publisher.publish(event_type, data, event_id=event_id)
    except ValidationError as exc:  # the envelope did not validate; PublishError goes to ops.cli.errors
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid event: {problems}") from None
    except ValueError as exc:
        raise click.ClickException(f"invalid event: {exc}") from None


@click.command()
@click.argument("event_type")
@click.option("--data", required=True, help='The event data as a JSON object, e.g. \'{"phone": "0811..."}\'.')
@click.option("--event-id", default=None, help="Reuse an event_id (UUID) instead of a new one.")
@click.option("--source", default="cli", show_default=True, help="The envelope's source field.")
@json_option
@click.pass_context
def publish(ctx: click.Context, event_type: str, data: str, event_id: str | None, source: str, as_json: bool) -> None:
    """Publish one event (persistent, confirmed) and print its event_id."""
    new_id = _publish(ctx, event_type, parse_json_object(data, "--data"), event_id, source)
    emit({"event_id": new_id, "event_type": event_type}, as_json, new_id)


@click.command("send-test")
@click.argument("phone")
@click.option("--template", default="test_message", show_default=True, help="The template to send.")
@json_option
@click.pass_context
def send_test(ctx: click.Context, phone: str, template: str, as_json: bool) -> None:
    """Queue a test message to PHONE at top priority (it still waits for the gap)."""
    try:
        normalize_phone(phone, settings_from(ctx).default_region)
    except InvalidEvent as exc:
        raise click.BadParameter(exc.detail, param_hint="PHONE") from None
    data = {
        "phone": phone, "template": template, "priority": "high",
        "variables": {"sent_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")},
    }
    new_id = _publish(ctx, "notification.requested", data, None, "send-test")
    emit({"event_id": new_id}, as_json, f"queued test message, event_id {new_id}")
