"""`personas run`: compute the selected traits and audiences at one as_of, then sync them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from reconciler.cli import AppContext, pass_app
from reconciler.errors import UsageError


def parse_as_of(text: str | None) -> datetime | None:
    """Parse an ISO 8601 timestamp or date from the command line (UTC without a zone)."""
    if text is None:
        return None
    from reconciler.spec.models import parse_timestamp

    try:
        return parse_timestamp(text)
    except ValueError:
        raise UsageError(
            f"invalid --as-of {text!r}", hint="Use ISO 8601, such as 1998-07-01 or 2024-03-31T00:00:00Z."
        ) from None


def parse_seconds(text: str, option: str) -> float:
    from reconciler.spec.types import parse_duration_seconds

    try:
        return float(parse_duration_seconds(text))
    except ValueError as error:
        raise UsageError(f"invalid {option}: {error}") from None


@click.command("run")
@click.option("--as-of", "as_of", metavar="TIMESTAMP", help="Evaluation time (ISO 8601, UTC unless a zone is given). Default: as_of of personas.yaml, else now.")
@click.option("--select", "selectors", multiple=True, metavar="SELECTOR", help="Address, glob, +ADDRESS (with upstream) or label:KEY=VALUE; repeat for a union. Default: everything.")
@click.option("--no-sync", is_flag=True, help="Compute only; send nothing to destinations.")
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION", help="How long to wait for another run to finish, such as 5m; 0s fails at once.")
@click.option("--approve-removals", multiple=True, metavar="A[:D]", help="Release held-back removals of AUDIENCE (at DESTINATION).")
@click.option("--full-resync", multiple=True, metavar="A[:D]", help="Send AUDIENCE's whole membership to DESTINATION again.")
@pass_app
def command(
    app: AppContext, as_of: str | None, selectors: tuple[str, ...], no_sync: bool, lock_timeout: str,
    approve_removals: tuple[str, ...], full_resync: tuple[str, ...],
) -> int:
    """Compute traits and audiences from the applied specs, then sync audiences to their destinations.

    Exits 0 when everything succeeded, 3 when a resource failed, a
    destination rejected changes or removals were held back, 1 on an error
    that stopped the run.
    """
    from reconciler.engine.runner import execute_run
    from reconciler.plan.service import open_state

    moment = parse_as_of(as_of)
    timeout = parse_seconds(lock_timeout, "--lock-timeout")
    project = app.load_project()
    store = open_state(project)
    try:
        result = execute_run(
            project, store, moment, list(selectors), sync=not no_sync,
            options=_sync_options(approve_removals, full_resync), lock_timeout=timeout,
        )
    finally:
        store.close()
    print_result(app, result)
    return result.exit_code


def _sync_options(approve_removals: tuple[str, ...], full_resync: tuple[str, ...]) -> Any:
    try:
        from reconciler.destinations.options import SyncOptions
    except ImportError:
        return None
    return SyncOptions(approve_removals=tuple(approve_removals), full_resync=tuple(full_resync))


def _change(outcome: Any) -> str:
    if outcome.entered is None:
        return ""
    return f"+{outcome.entered} -{outcome.exited}"


def _size(outcome: Any) -> str:
    """The SIZE cell: members, with the held-out ones named so the synced count adds up."""
    if outcome.size is None:
        return ""
    holdout = getattr(outcome, "holdout", None)
    return f"{outcome.size} ({holdout} held out)" if holdout else str(outcome.size)


def print_result(app: AppContext, result: Any) -> None:
    """Print a table of resources (status, size, change, duration), the run id and what needs attention."""
    rows = [("RESOURCE", "STATUS", "SIZE", "CHANGE", "DURATION")]
    for outcome in result.outcomes:
        size = _size(outcome)
        rows.append((outcome.address, outcome.status, size, _change(outcome), f"{outcome.duration_s:.2f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        app.console.print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for outcome in result.outcomes:
        if outcome.invalid:
            noun = "value that did not parse as a number was" if outcome.invalid == 1 else "values that did not parse as numbers were"
            app.console.warning(f"{outcome.address}: {outcome.invalid} {noun} skipped")
        if outcome.error:
            app.console.print(f"{outcome.address}: {outcome.status}: {outcome.error}", err=True)
    if result.syncs:
        from reconciler.destinations.report import summary_line

        for record in result.syncs:
            app.console.print(summary_line(record))
    for message in result.attention:
        app.console.print(f"needs attention: {message}", err=True)
    app.console.print(f"Run {result.run_id} at as_of {result.as_of.strftime('%Y-%m-%dT%H:%M:%SZ')}.")
    if result.exit_code == 3:
        app.console.print(
            "Finished with failures, rejected changes or held-back removals (exit 3). Fix the errors above, "
            "look at rejected changes with `personas syncs show AUDIENCE:DESTINATION`, or release held removals with "
            "`personas run --approve-removals AUDIENCE[:DESTINATION]`.",
            err=True,
        )
