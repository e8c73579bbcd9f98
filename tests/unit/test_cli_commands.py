"""The command table: each command loads from its module, and running one loads no other's."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from wanotify.ops.cli.app import COMMANDS, main


def test_every_command_in_the_table_loads_under_its_own_name() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert command.name == name
    assert main.get_command(ctx, "stauts") is None


def test_help_lists_every_command_but_the_deprecated_one_and_templates_keeps_its_sync_subcommand() -> None:
    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0
    for name in set(COMMANDS) - {"webhook"}:
        assert f"\n  {name} " in listing.output, name
    assert "\n  webhook " not in listing.output
    templates = CliRunner().invoke(main, ["templates", "--help"])
    assert templates.exit_code == 0 and "\n  sync " in templates.output


def test_running_one_command_imports_none_of_the_other_commands_modules() -> None:
    # A new interpreter: this one has imported every module already.
    script = ("import sys\nfrom wanotify.ops.cli.app import main\n"
              "main(['status', '--help'], standalone_mode=False)\n"
              "print(*sorted(m for m in sys.modules if m.startswith('wanotify.ops.cli.')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = {name.removeprefix("wanotify.ops.cli.") for name in done.stdout.splitlines()[-1].split()}
    others = {where.split(":")[0] for where in COMMANDS.values()} - {"status"}
    assert "status" in loaded
    assert not loaded & others, sorted(loaded & others)
