"""MkDocs hook: generate the command and settings references from the code, so they cannot drift.

A page holding ``<!-- cli-reference -->`` gets every command's help, from the Typer app;
one holding ``<!-- settings-reference -->`` gets every setting with its environment
variable, default and meaning, from the Settings model.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace the reference markers of a page with the generated references."""
    if "<!-- cli-reference -->" in markdown:
        markdown = markdown.replace("<!-- cli-reference -->", cli_reference())
    if "<!-- settings-reference -->" in markdown:
        markdown = markdown.replace("<!-- settings-reference -->", settings_reference())
    return markdown


def cli_reference() -> str:
    """Every command's help, as Markdown, from the Typer app."""
    import typer
    import typer.main
    from typer.cli import get_docs_for_click

    from service_ambitions.cli.app import app

    command = typer.main.get_command(app)
    context = typer.Context(command)
    context.ensure_object(dict)
    context.obj["TYPER_RICH_MARKUP_MODE"] = app.rich_markup_mode
    docs = get_docs_for_click(obj=command, ctx=context, name="service-ambitions", title="Command reference")
    # A "\b" line keeps a help paragraph's line breaks in the terminal; here it becomes a code block.
    docs = _BLOCK.sub(lambda match: "```bash\n" + textwrap.dedent(match.group(1)).rstrip() + "\n```\n", docs)
    # The reference sits under the page's own title: demote its headings one level.
    return "\n".join("#" + line if line.startswith("#") else line for line in docs.splitlines())


_BLOCK = re.compile(r"^\x08\n((?:[ \t]+\S.*(?:\n|$))+)", re.MULTILINE)


def settings_reference() -> str:
    """A table of every setting: dotted name, environment variable, default, meaning."""
    from service_ambitions.config.settings import Settings

    rows = ["| setting | environment variable | default | meaning |", "| --- | --- | --- | --- |"]
    rows += _rows(Settings.model_fields, prefix="", env_prefix="SA_")
    return "\n".join(rows)


def _rows(fields: dict[str, FieldInfo], *, prefix: str, env_prefix: str) -> list[str]:
    rows: list[str] = []
    for name, field in fields.items():
        dotted, variable = f"{prefix}{name}", f"{env_prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _rows(annotation.model_fields, prefix=f"{dotted}.", env_prefix=f"{variable}__")
            continue
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else f"`{json.dumps(default, default=str)}`"
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{dotted}` | `{variable}` | {shown} | {meaning} |")
    return rows
