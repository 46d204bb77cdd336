"""The `personas` command line.

Each command lives in `reconciler/cli/commands/<name>.py` and exposes a click
object named `command`; the group imports a command's module only when that
command runs, so `validate` and `plan` do not pay for the engine's imports.

Global options are accepted before or after the command name: `main` moves
them to the front before click parses the line. Every failure becomes one red
line on stderr and an exit code (1 for errors, including usage errors, since
2 means "changes present"); `--debug` adds the traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import click

from reconciler import __version__
from reconciler.cli.console import Console, console
from reconciler.errors import PersonasError

log = logging.getLogger(__name__)

_GLOBAL_FLAGS = {"--debug", "--no-color", "--verbose", "--version"}
_GLOBAL_VALUE_OPTIONS = {"--project", "--log-format"}


@dataclass
class AppContext:
    """Global options, handed to every command."""

    project_dir: Path
    verbose: int = 0
    debug: bool = False
    log_format: str = "text"
    console: Console = field(default_factory=lambda: console)

    def load_project(self):
        """Load and validate the project, raising SpecError with every problem found."""
        from reconciler.project import load_project

        return load_project(self.project_dir)

    def load_settings(self):
        """Load only personas.yaml, for commands that need no resource file."""
        from reconciler.project import load_settings

        return load_settings(self.project_dir)


pass_app = click.make_pass_decorator(AppContext)


class LazyGroup(click.Group):
    """A group whose subcommands are the modules of `reconciler.cli.commands`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from reconciler.cli import commands

        names = [info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_")]
        return sorted(name.replace("_", "-") for name in names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.list_commands(ctx):
            return None
        module = importlib.import_module(f"reconciler.cli.commands.{cmd_name.replace('-', '_')}")
        return module.command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default="the current folder",
    help="Project folder holding personas.yaml.",
)
@click.option("-v", "--verbose", count=True, help="Log more: -v for info, -vv for debug.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of log lines on stderr; json suits daemons and log collectors.",
)
@click.option("--no-color", is_flag=True, help="Never colour output (also: set NO_COLOR).")
@click.version_option(__version__, prog_name="personas")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path, verbose: int, debug: bool, log_format: str, no_color: bool) -> None:
    """Customer audiences as code: validate, plan and apply specs, then compute and sync audiences."""
    from reconciler.logs import configure_logging

    configure_logging(verbose, log_format)
    if no_color or os.environ.get("NO_COLOR"):
        console.color = False
    ctx.obj = AppContext(project_dir=project_dir, verbose=verbose, debug=debug, log_format=log_format)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found anywhere before `--` to the front of the argument list."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.split("=", 1)[0]
        if arg in _GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            hoisted.append(arg)
        elif name in _GLOBAL_VALUE_OPTIONS:
            hoisted.append(arg)
            if "=" not in arg and index + 1 < len(args):
                hoisted.append(args[index + 1])
                index += 1
        else:
            rest.append(arg)
        index += 1
    return hoisted + rest


def main(args: list[str] | None = None) -> int:
    """Run the CLI and exit with its code; errors never end in a bare traceback."""
    argv = hoist_global_options(list(sys.argv[1:] if args is None else args))
    debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
    code = _run(argv, debug)
    sys.stdout.flush()
    sys.exit(code)


def _run(argv: list[str], debug: bool) -> int:
    try:
        result = cli.main(argv, prog_name="personas", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.exceptions.Abort:
        console.error("Aborted.")
        return 1
    except click.ClickException as error:
        # Usage errors exit 1, not click's 2: 2 means "changes present" for plan.
        console.error(error.format_message(), _usage_hint(error))
        return 1
    except PersonasError as error:
        if debug:
            traceback.print_exc()
        console.error(error.message, error.hint)
        return error.exit_code
    except KeyboardInterrupt:
        console.error("Interrupted.")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as error:  # noqa: BLE001 - the last line of defence for users
        if debug:
            traceback.print_exc()
        console.error(
            f"internal error: {type(error).__name__}: {error}",
            "This is a bug in personas. Run again with --debug for the traceback and report it.",
        )
        return 1
    return result if isinstance(result, int) else 0


def _usage_hint(error: click.ClickException) -> str | None:
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return "Run `personas --help` for usage."
    return f"Run `{ctx.command_path} --help` for usage."
