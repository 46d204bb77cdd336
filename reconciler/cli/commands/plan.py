"""`personas plan`: what an apply would change, and why."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click

from reconciler.cli import AppContext, pass_app
from reconciler.gcpause import paused_gc

FORMATS = click.Choice(["text", "json", "markdown"])


@click.command("plan")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan as canonical JSON, for `personas apply FILE`.")
@click.option("--format", "output_format", type=FORMATS, default="text", show_default=True, help="What to print; --out always writes JSON.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are, 1 on errors.")
@click.option("--target", "targets", multiple=True, metavar="GLOB", help="Plan only addresses matching this glob, plus the changes they depend on (repeatable).")
@click.option("--exclude", "excludes", multiple=True, metavar="GLOB", help="Leave out addresses matching this glob (repeatable).")
@click.option("--estimate", is_flag=True, help="Also compute audience sizes before and after, in the warehouse.")
@pass_app
def command(
    app: AppContext,
    out: Path | None,
    output_format: str,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    estimate: bool,
) -> int:
    """Compare the specs with the applied state and show the changes; writes nothing but --out."""
    with paused_gc():  # imports and loading make many objects and few cycles; see paused_gc
        project, plan = _load_and_plan(app, targets, excludes)
    if out is not None:
        from reconciler.plan.render_json import write_plan

        write_plan(plan, out)
    print_plan(app, plan, output_format)
    if estimate:
        print_estimate(app, project, plan)
    if out is not None and output_format == "text":
        app.console.print(f"\nSaved the plan to {out}. Apply exactly this plan with: personas apply {out}")
    if detailed_exitcode and not plan.is_empty:
        return 2
    return 0


def _load_and_plan(app: AppContext, targets: tuple[str, ...], excludes: tuple[str, ...]) -> tuple[Any, Any]:
    """Load the project, read the state without writing and return both with the plan between them."""
    from reconciler.plan.service import make_plan, open_state_reader, read_state

    project = app.load_project()
    for warning in getattr(project, "warnings", []):
        app.console.warning(_diagnostic_text(warning))
    store = open_state_reader(project)
    try:
        snapshot = read_state(store)
        plan, _ = make_plan(project, store, snapshot, targets=targets, excludes=excludes)
    finally:
        store.close()
    return project, plan


def print_plan(app: AppContext, plan: Any, output_format: str) -> None:
    """Print a plan in one of the three formats; colour only for text on a terminal."""
    if output_format == "json":
        from reconciler.plan.render_json import render_json

        app.console.print(render_json(plan), nl=False)
    elif output_format == "markdown":
        from reconciler.plan.render_markdown import render_markdown

        app.console.print(render_markdown(plan), nl=False)
    else:
        from reconciler.plan.render_text import render_text

        app.console.print(render_text(plan, style=app.console.style, show_steps=app.verbose > 0), nl=False)


def print_estimate(app: AppContext, project: Any, plan: Any) -> None:
    """Audience sizes before and after, from the engine's `estimate_sizes` when it is installed."""
    if importlib.util.find_spec("reconciler.engine.estimate") is None:
        app.console.warning("--estimate needs the compute engine's size estimates, which this installation lacks.")
        return
    from reconciler.engine.estimate import estimate_sizes

    sizes = estimate_sizes(project, plan)
    if not sizes:
        app.console.print("Estimated sizes: no audience is affected.")
        return
    app.console.print("Estimated sizes (members before -> after):")
    for address, (before, after) in sorted(sizes.items()):
        app.console.print(f"  {address}: {_size(before)} -> {_size(after)}")


def _size(value: int | None) -> str:
    return "(none)" if value is None else f"{value:,}"


def _diagnostic_text(diagnostic: Any) -> str:
    location = f"{diagnostic.file}:{diagnostic.line}: " if getattr(diagnostic, "file", None) else ""
    return f"{location}{diagnostic.message}"
