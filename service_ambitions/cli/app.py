"""The Typer application: global options, the consoles, and the one error handler.

Commands live one module each and know nothing of error handling: :func:`_reported`
wraps every command, turns a :class:`ServiceAmbitionsError` into one red line and its
exit code, and Ctrl-C into exit 130. Anything else is a bug and keeps its traceback
(without local variables, so no secret is printed).

Exit codes: 0 success; 1 unexpected error; 2 usage error; 3 input; 4 configuration or
credentials; 5 provider; 6 budget; 7 cache; 8 resume; 9 finished, but some lines or
services were quarantined; 10 an output or run journal cannot be written; 130 interrupted.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from service_ambitions.cli import check as check_module
from service_ambitions.cli import diff as diff_module
from service_ambitions.cli import eval as eval_module
from service_ambitions.cli import export as export_module
from service_ambitions.cli import init as init_module
from service_ambitions.cli import map as map_module
from service_ambitions.cli import models as models_module
from service_ambitions.cli import run as run_module
from service_ambitions.cli import schema as schema_module
from service_ambitions.cli import serve as serve_module
from service_ambitions.cli import validate as validate_module
from service_ambitions.cli import view as view_module
from service_ambitions.cli.cache import cache_app
from service_ambitions.cli.job import Terminated
from service_ambitions.cli.migrate import migrate_app
from service_ambitions.cli.report import report, runs_app
from service_ambitions.cli.safe import markup_safe
from service_ambitions.cli.state import AppState
from service_ambitions.core.errors import EXIT_INTERRUPTED, OutputClosed, ServiceAmbitionsError

__all__ = ["app", "hoist_global_options", "main"]

P = ParamSpec("P")
R = TypeVar("R")


app = typer.Typer(
    name="service-ambitions",
    help=(
        "Turn a JSONL of business services into service evolutions: per maturity plateau, "
        "the features each customer type gets, their maturity scores, and the catalogue "
        "items each feature relies on.\n\n"
        "Try it with no API key:\n\n"
        "\b\n    service-ambitions run examples/services.jsonl -o evolutions.jsonl --model offline"
        "\n    service-ambitions view evolutions.jsonl -o roadmap.html"
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # Plain click help: rich's help renderer costs ~150 ms of imports on every --help.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"service-ambitions {version('service-ambitions')}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML settings file (default: config/app.yaml when it exists).",
            show_default=False,
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour in any output (as does the NO_COLOR variable).")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Jobs print only errors and their final one-line result.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    out, err = _console(stderr=False, no_color=no_color), _console(stderr=True, no_color=no_color)
    ctx.obj = AppState(config=config, out=out, err=err, quiet=quiet)


_UNBOUNDED_WIDTH = 1000
"""Width of a console that is a pipe or a file: wide enough that no table or figure is cut."""


def _console(*, stderr: bool, no_color: bool = False) -> Console:
    """A console; one that is not a terminal is never cut to 80 columns, unless COLUMNS says so."""
    console = Console(stderr=stderr, no_color=no_color or None)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, no_color=no_color or None, width=_UNBOUNDED_WIDTH)
    return console


def _reported(command: Callable[P, R]) -> Callable[P, R]:
    """Run ``command`` with user errors turned into one line and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        err = Console(stderr=True)
        try:
            return command(*args, **kwargs)
        except OutputClosed:
            raise typer.Exit(OutputClosed.exit_code) from None  # `| head` has what it wanted: quietly
        except BrokenPipeError:
            from service_ambitions.inputs.jsonl import silence_stdout

            silence_stdout()
            raise typer.Exit(0) from None
        except ServiceAmbitionsError as exc:
            err.print(f"[bold red]error:[/] {markup_safe(exc.user_message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            how = "terminated[/] by SIGTERM" if isinstance(exc, Terminated) else "interrupted[/] by Ctrl-C"
            err.print(f"[yellow]{how}: every line already written to the output is complete")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


app.command("run", no_args_is_help=True)(_reported(run_module.run))
app.command("map", no_args_is_help=True)(_reported(map_module.map_features))
app.command("validate", no_args_is_help=True)(_reported(validate_module.validate))
app.command("schema")(_reported(schema_module.schema))
app.command("init")(_reported(init_module.init))
app.command("serve")(_reported(serve_module.serve))
app.command("report")(_reported(report))
app.command("diff", no_args_is_help=True)(_reported(diff_module.diff))
app.command("check", no_args_is_help=True)(_reported(check_module.check))
app.command("eval", no_args_is_help=True)(_reported(eval_module.evaluate))
app.command("export", no_args_is_help=True)(_reported(export_module.export))
app.command("view", no_args_is_help=True)(_reported(view_module.view))
runs_app.command("collect")(run_module.collect)
for _group in (cache_app, runs_app, migrate_app, models_module.models_app):
    for _command in _group.registered_commands:
        assert _command.callback is not None  # nosec B101  # typer sets the callback of every command it registers
        _command.callback = _reported(_command.callback)
app.add_typer(cache_app, name="cache")
app.add_typer(runs_app, name="runs")
app.add_typer(migrate_app, name="migrate")
app.add_typer(models_module.models_app, name="models")


_GLOBAL_FLAGS = frozenset({"--no-color", "--quiet", "-q"})
_GLOBAL_WITH_VALUE = frozenset({"--config", "-c"})


def hoist_global_options(args: list[str]) -> list[str]:
    """The arguments with global options moved before the command, wherever they were typed.

    ``service-ambitions run … --config x.yaml`` then means what ``service-ambitions
    --config x.yaml run …`` means; everything after ``--`` is left alone.
    """
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        name = arg.split("=", 1)[0]
        if arg in _GLOBAL_FLAGS or (name in _GLOBAL_WITH_VALUE and "=" in arg):
            hoisted.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and index + 1 < len(args):
            hoisted += args[index : index + 2]
            index += 1
        else:
            rest.append(arg)
        index += 1
    return hoisted + rest


def main(args: list[str] | None = None) -> None:
    """Console-script entry point."""
    # From the first moment, SIGTERM stops the tool as Ctrl-C does (exit 130, the run
    # recorded as terminated), not only once a job's event loop has taken it over.
    signal.signal(signal.SIGTERM, _terminated)
    app(args=hoist_global_options(sys.argv[1:] if args is None else args), prog_name="service-ambitions")


def _terminated(signum: int, frame: object) -> None:
    raise Terminated
