"""The one error an admin action raises when it refuses a request.

Every entry point shows it the same way: the command line as one ``Error: …`` line with exit
code 1 (``wanotify.ops.cli.errors`` knows every ``WanotifyError``), the console inline next to the form.
The text says what is wrong and how to fix it.
"""

from __future__ import annotations

from wanotify.shared.errors import WanotifyError


class ActionRefused(WanotifyError):
    """The action was not done (nothing changed): the request names something that does not
    exist, or asks for something that would break a rule."""
