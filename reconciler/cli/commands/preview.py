"""`personas preview ADDRESS`: compute one audience or trait from the specs on disk, storing nothing."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import click

from reconciler.cli import AppContext, pass_app
from reconciler.cli.commands.run import parse_as_of


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Any) -> Any:
    """Convert a value for JSON: decimals as exact text, timestamps as ISO 8601 UTC."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str) and value.startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def text_value(value: Any) -> str:
    """Format a trait value for the text output: numbers and booleans bare, text in quotes."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(_plain(value), ensure_ascii=False)


def to_dict(result: Any) -> dict[str, Any]:
    if hasattr(result, "holdout_size"):
        return {
            "address": result.address, "as_of": _iso(result.as_of), "size": result.size,
            "holdout_size": result.holdout_size, "sample": list(result.sample),
        }
    return {
        "address": result.address, "as_of": _iso(result.as_of), "coverage": result.coverage,
        "candidates": result.candidates, "invalid": result.invalid,
        "sample": [{"subject_id": subject, "value": _plain(value)} for subject, value in result.sample],
    }


@click.command("preview")
@click.argument("address")
@click.option("--as-of", "as_of", metavar="TIMESTAMP", help="Evaluation time (ISO 8601). Default: as_of of personas.yaml, else now.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def command(app: AppContext, address: str, as_of: str | None, output_format: str) -> int:
    """Compute ADDRESS (an audience or trait) from the specs on disk, without storing anything.

    Upstream traits and audiences are computed along with it, from the specs on disk too.
    """
    from reconciler.engine.preview import preview
    from reconciler.engine.runner import resolve_as_of

    project = app.load_project()
    moment = resolve_as_of(project, parse_as_of(as_of))
    result = preview(project, address, moment)
    data = to_dict(result)
    if output_format == "json":
        app.console.print(json.dumps(data, indent=2))
        return 0
    app.console.print(f"{data['address']} at as_of {data['as_of']}")
    if "size" in data:
        app.console.print(f"  size: {data['size']} (holdout {data['holdout_size']})")
        for subject in data["sample"]:
            app.console.print(f"    {subject}")
        return 0
    app.console.print(f"  coverage: {data['coverage']} of {data['candidates']} candidates")
    if data["invalid"] is not None:
        app.console.print(f"  invalid values skipped: {data['invalid']}")
    for subject, value in result.sample:
        app.console.print(f"    {subject}: {text_value(value)}")
    return 0
