"""Diagnostics: one problem found in a project, with the place it was found.

Every check of personas (YAML syntax, the models, the semantic checks) reports
what it finds as a `Diagnostic` rather than raising, so that one run of
`personas validate` lists every problem of every file at once.

A diagnostic's place is the file (posix path relative to the project folder),
the 1-based line and column (None when the problem concerns a whole file, such
as a missing `personas.yaml`) and the dotted YAML path inside the document,
such as `spec.include.all[0].window`. `code` is a stable kebab-case name a
script can match on. The codes, by the stage that reports them:

    reading files     missing-project-file, file-unreadable, file-encoding, yaml-syntax,
                      duplicate-key, unsupported-tag, invalid-key, invalid-merge,
                      yaml-recursive-alias, yaml-too-large, file-skipped (a warning),
                      empty-file (a warning)
    the models        invalid-document, unknown-kind, unknown-key, missing-key, invalid-type,
                      invalid-value, invalid-name, invalid-condition, invalid-operator,
                      invalid-window, invalid-duration, invalid-holdout, invalid-url,
                      invalid-regex
    the whole project duplicate-resource, previous-name-conflict, unknown-trait,
                      unknown-audience, unknown-destination, unknown-identifier,
                      duplicate-destination, duplicate-identifier, consent-not-boolean,
                      operator-mismatch, operand-mismatch, entity-mismatch, reference-cycle,
                      literal-secret, invalid-reference, unset-variable (a warning)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]
PathPart = str | int

_PLAIN_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class SourceLocation:
    """Where a resource is written: a posix path relative to the project folder and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a project."""

    file: str
    line: int | None
    column: int | None
    path: str
    code: str
    severity: Severity
    message: str
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sort_key(self) -> tuple[Any, ...]:
        return (self.file, self.line or 0, self.column or 0, self.path, self.code, self.message)

    def __str__(self) -> str:
        return format_diagnostic(self)


def format_path(parts: Sequence[PathPart]) -> str:
    """Write a YAML path as dotted text: ("spec", "include", "all", 0) -> `spec.include.all[0]`.

    Keys that are not plain words (spaces, dots, quotes) are written as `["a key"]`.
    """
    text = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
            continue
        part = part if isinstance(part, str) else _scalar_text(part)
        if _PLAIN_KEY_RE.match(part):
            text += f".{part}" if text else part
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            text += f'["{escaped}"]'
    return text


def _scalar_text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_diagnostic(diagnostic: Diagnostic) -> str:
    """Render as `file:line:column: error[code] path: message`, plus an indented hint line."""
    place = diagnostic.file
    if diagnostic.line is not None:
        place += f":{diagnostic.line}"
        if diagnostic.column is not None:
            place += f":{diagnostic.column}"
    where = f" {diagnostic.path}:" if diagnostic.path else ""
    text = f"{place}: {diagnostic.severity}[{diagnostic.code}]{where} {diagnostic.message}"
    if diagnostic.hint:
        text += f"\n    hint: {diagnostic.hint}"
    return text


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Order by file, then position; drop exact repeats."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [diagnostic for diagnostic in diagnostics if diagnostic.is_error]


def warnings(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [diagnostic for diagnostic in diagnostics if not diagnostic.is_error]


def plural(count: int, word: str) -> str:
    """`1 error`, `2 errors`, `1,500 errors`: the count with thousands separators, then the word."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def summarize(diagnostics: Sequence[Diagnostic], unchecked: int = 0) -> str:
    """`2 errors, 1 warning in 3 files.`, and how many documents could only be checked in part."""
    files = {diagnostic.file for diagnostic in diagnostics}
    error_count = len(errors(diagnostics))
    warning_count = len(diagnostics) - error_count
    text = f"{plural(error_count, 'error')}, {plural(warning_count, 'warning')} in {plural(len(files), 'file')}"
    if unchecked:
        text += f"; {plural(unchecked, 'document')} could not be checked further until they are fixed"
    return text + "."
