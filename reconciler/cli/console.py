"""What the user sees: the only place that writes to stdout and stderr.

Colour is used only on a terminal, and never with `--no-color` or when the
`NO_COLOR` environment variable is set to anything non-empty.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import click


@dataclass
class Console:
    color: bool | None = None  # None: decide per stream from NO_COLOR and isatty

    def _use_color(self, err: bool) -> bool:
        if self.color is not None:
            return self.color
        if os.environ.get("NO_COLOR"):
            return False
        stream = sys.stderr if err else sys.stdout
        return hasattr(stream, "isatty") and stream.isatty()

    def style(self, text: str, *, err: bool = False, **styles) -> str:
        return click.style(text, **styles) if self._use_color(err) else text

    def print(self, text: str = "", *, err: bool = False, nl: bool = True, **styles) -> None:
        if styles:
            text = self.style(text, err=err, **styles)
        click.echo(text, err=err, nl=nl, color=self._use_color(err))

    def error(self, message: str, hint: str | None = None) -> None:
        self.print(self.style("Error: ", err=True, fg="red", bold=True) + message, err=True)
        if hint:
            self.print(hint, err=True)

    def warning(self, message: str) -> None:
        self.print(self.style("Warning: ", err=True, fg="yellow", bold=True) + message, err=True)


console = Console()
