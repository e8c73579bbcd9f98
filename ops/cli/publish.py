"""Publishing as an upstream system would: ``publish`` and ``send-test`` (also the urgent send).

Both check the event exactly as the notifier will (``wanotify.ops.admin.publishing``) and refuse it at
once, with the notifier's reason, instead of publishing something that would be parked.
"""

from __future__ import annotations

from typing import Any

import click

from wanotify.ops.admin.audit import cli_actor
from wanotify.ops.admin.publishing import Published, publish_checked, publish_unchecked, send_urgent
from wanotify.ops.cli.common import db_session, emit, json_option, parse_json_object, settings_from


@click.command()
@click.argument("event_type")
@click.option("--data", required=True, help='The event data as a JSON object, e.g. \'{"phone": "0811..."}\'.')
@click.option("--event-id", default=None, help="Reuse an event_id (UUID) instead of a new one.")
@click.option("--source", default="cli", show_default=True, help="The envelope's source field.")
@click.option("--no-check", is_flag=True, help="Publish without checking it first (to see how the notifier parks "
                                               "a bad event).")
@json_option
@click.pass_context
def publish(ctx: click.Context, event_type: str, data: str, event_id: str | None, source: str, no_check: bool,
            as_json: bool) -> None:
    """Publish one event (persistent, confirmed) and print its event_id.

    The event is checked first as the notifier will check it: its envelope and data, a rule
    for its type, the phone number and a render of its templates. A problem is refused with
    the reason the notifier would have parked it for (exit code 1)."""
    settings = settings_from(ctx)
    fields = parse_json_object(data, "--data")
    if no_check:
        new_id = publish_unchecked(settings, event_type, fields, event_id=event_id, source=source)
    else:
        with db_session(settings) as session:
            new_id = publish_checked(session, settings, event_type, fields, event_id=event_id, source=source).event_id
    emit({"event_id": new_id, "event_type": event_type}, as_json, new_id)


def _variables(_ctx: Any, _param: Any, values: tuple[str, ...]) -> dict[str, str]:
    variables = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE, e.g. --var name=Budi")
        variables[name.strip()] = text
    return variables


@click.command("send-test")
@click.argument("phone")
@click.option("--text", default=None, help="Send this text (an urgent message composed now).")
@click.option("--template", default=None, help="Send this template (default: test_message).")
@click.option("--var", "variables", multiple=True, callback=_variables, metavar="NAME=VALUE",
              help="A variable of --template (repeatable).")
@click.option("--sender", default=None, metavar="S", help="Send from this sender (to try a number); default: the recipient's.")
@json_option
@click.pass_context
def send_test(ctx: click.Context, phone: str, text: str | None, template: str | None, variables: dict[str, str],
              sender: str | None, as_json: bool) -> None:
    """Queue a message to PHONE at top priority: the test message, a --template with --var
    values, or a --text. It goes before every waiting message, still a gap after the last call.

    Checked first as the notifier will check it (phone number, template, variables)."""
    if variables and template is None:
        raise click.UsageError("--var needs --template")
    settings = settings_from(ctx)
    action = "send.test" if text is None and template is None else "send.urgent"
    with db_session(settings) as session:
        sent: Published = send_urgent(session, settings, cli_actor(), phone, text=text, template=template,
                                      variables=variables, action=action, sender=sender)
    [message] = sent.as_dict()["messages"]
    emit(sent.as_dict(), as_json, f"queued {message['template']} to {message['recipient']} at top priority, "
                                  f"event_id {sent.event_id}")
