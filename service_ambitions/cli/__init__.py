"""Command-line interface: the only package that imports typer.

May import: every room below it except ``llm``, ``pipeline`` and ``cache`` (it goes
through ``jobs``); nothing imports it.
"""

import os

# pydantic loads every installed plugin when the first model is built: logfire's imports
# logfire, OpenTelemetry's SDK and requests (about a third of a cached run's start-up),
# and the tool uses none (its telemetry goes through logfire.configure, not the plugin).
# A user who sets the variable keeps their choice.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

__all__: list[str] = []
