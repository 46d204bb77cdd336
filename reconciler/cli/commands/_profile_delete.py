"""`personas profile delete`: erase one person from the warehouse and every destination."""

from __future__ import annotations

import sys

import click

from reconciler.cli import AppContext, pass_app
from reconciler.errors import StateError, UsageError
from reconciler.spec.diagnostics import plural


@click.command("delete")
@click.argument("identifier")
@click.option("--type", "identifier_type", metavar="TYPE", help="Identifier type of IDENTIFIER (user_id, email, ...), when it is ambiguous.")
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation (needed without a terminal, as in scripts and CI).")
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION", help="How long to wait for a running `personas run`.")
@pass_app
def delete(app: AppContext, identifier: str, identifier_type: str | None, yes: bool, lock_timeout: str) -> int:
    """Erase the person holding IDENTIFIER: suppress, remove from destinations, purge.

    Future messages carrying any of their identifiers are dropped at ingest;
    every destination gets exits for them whatever its mode (the removal
    guard does not apply); every row naming them is deleted from personas'
    tables and from file destinations. Exits 3 when a destination did not
    acknowledge its exits (remove the person there by hand).
    """
    from reconciler.cli.commands.run import parse_seconds
    from reconciler.destinations.erasure import erase_profile
    from reconciler.engine.warehouse import open_warehouse
    from reconciler.plan.service import open_state

    if not yes:
        _confirm(identifier)
    project = app.load_project()
    timeout = parse_seconds(lock_timeout, "--lock-timeout")
    store = open_state(project)
    try:
        if not store.exists():
            raise StateError("the state store is empty: nothing was applied yet", hint="Run `personas apply` first.")
        store.check_schema()
        with store.lock(name="run", operation="erase", timeout=timeout), open_warehouse(project) as warehouse:
            report = erase_profile(project, store, warehouse, identifier, identifier_type)
    finally:
        store.close()
    return print_report(app, report)


def _confirm(identifier: str) -> None:
    """Prompt for confirmation on a terminal. Without a terminal, raise at once rather than read empty input."""
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to erase without confirmation: no terminal to ask; pass --yes to confirm",
            hint="Nothing was erased. Add --yes when running without a terminal, as in scripts and CI.",
        )
    if not click.confirm(f"Erase the profile holding {identifier!r} everywhere? This cannot be undone", default=False):
        raise UsageError("nothing was erased", hint="Pass --yes to erase without the question.")


def print_report(app: AppContext, report) -> int:
    """Counts only: the erased values are not printed back."""
    profiles, values = plural(report.profiles, "profile"), plural(report.identifiers, "identifier value")
    app.console.print(f"Erased {profiles} holding {values}.")
    width = max((len(f"{count:,}") for count in report.rows_deleted.values()), default=1)
    for table, count in sorted(report.rows_deleted.items()):
        rows = "row" if count == 1 else "rows"
        app.console.print(f"  {table:<34} {count:>{width},} {rows} deleted")
    app.console.print(f"  file destination files rewritten: {report.files_rewritten}")
    for outcome in report.destinations:
        line = f"  exits sent to {outcome.label}: {outcome.status}"
        app.console.print(line + (f" ({outcome.message})" if outcome.message else ""))
    for table in report.upstream:
        app.console.warning(f"{table} is read through `sources:`; purge the person there, where it is loaded")
    if not report.complete:
        app.console.print("Some destinations did not acknowledge the exits; remove the person there by hand.", err=True)
        return 3
    return 0
