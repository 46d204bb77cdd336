"""`personas validate`: every problem of every file at once, with its place."""

from __future__ import annotations

import json

import click

from reconciler.cli import AppContext, pass_app


@click.command("validate")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@pass_app
def command(app: AppContext, as_json: bool) -> int:
    """Check personas.yaml and every resource file, offline and without secrets.

    Prints one line per problem, `file:line:column: error[code] path: message`,
    with a hint below it, then a summary. Exits 0 when the project is valid
    (warnings, such as an unset environment variable, are printed but do not
    fail it) and 1 otherwise. Nothing is connected to: no warehouse, no state.
    """
    from reconciler.project import check_project

    result = check_project(app.project_dir)
    if as_json:
        app.console.print(json.dumps(_as_json(result), indent=2))
    else:
        _print_text(app, result)
    return 0 if result.valid else 1


def _print_text(app: AppContext, result) -> None:
    from reconciler.spec.diagnostics import format_diagnostic, summarize

    for diagnostic in result.diagnostics:
        color = "red" if diagnostic.is_error else "yellow"
        word = diagnostic.severity
        text = format_diagnostic(diagnostic).replace(f" {word}[", " " + app.console.style(word, fg=color, bold=True) + "[", 1)
        app.console.print(text)
    if not result.valid:
        app.console.print(summarize(result.diagnostics, getattr(result, "unchecked", 0)))
        return
    counts = result.counts
    line = f"Valid: {_count(counts['traits'], 'trait')}, {_count(counts['audiences'], 'audience')}, " \
           f"{_count(counts['destinations'], 'destination')}."
    if result.diagnostics:
        line = line[:-1] + f" ({_count(len(result.diagnostics), 'warning')})."
    app.console.print(line, fg="green")


def _as_json(result) -> dict:
    from reconciler.spec.diagnostics import errors

    found = errors(result.diagnostics)
    return {
        "valid": result.valid,
        "diagnostics": [diagnostic.to_dict() for diagnostic in result.diagnostics],
        "summary": {
            "errors": len(found),
            "warnings": len(result.diagnostics) - len(found),
            "files_with_problems": len({diagnostic.file for diagnostic in result.diagnostics}),
            "files_checked": result.files,
            "documents_not_checked_further": getattr(result, "unchecked", 0),
            **result.counts,
        },
    }


def _count(number: int, word: str) -> str:
    from reconciler.spec.diagnostics import plural

    return plural(number, word)
