"""`personas show PLANFILE`: render a saved plan."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import AppContext, pass_app
from reconciler.cli.commands.plan import FORMATS, print_plan


@click.command("show")
@click.argument("planfile", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "output_format", type=FORMATS, default="text", show_default=True, help="How to render the plan.")
@pass_app
def command(app: AppContext, planfile: Path, output_format: str) -> int:
    """Show a plan saved with `personas plan --out FILE`, without reading the specs or the state."""
    from reconciler.plan.render_json import read_plan

    plan = read_plan(planfile)
    print_plan(app, plan, output_format)
    return 0
