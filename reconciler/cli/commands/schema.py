"""`personas schema`: write the JSON Schemas of the spec language for editors and CI."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import AppContext, pass_app
from reconciler.spec.diagnostics import plural


@click.command("schema")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write the schema files to. Default: schemas/ in the project folder.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a schema file is missing or out of date.")
@pass_app
def command(app: AppContext, out: Path | None, check: bool) -> int:
    """Write JSON Schema (draft 2020-12) files generated from the spec models.

    Five files: project.schema.json (personas.yaml), trait.schema.json,
    audience.schema.json, destination.schema.json, and resource.schema.json
    (any kind, chosen by `kind`). Point an editor at them with a first line
    such as `# yaml-language-server: $schema=./schemas/trait.schema.json`.
    Run it again after upgrading personas to refresh them.
    """
    from reconciler.spec.schema import stale_schemas, write_schemas

    folder = out if out is not None else app.project_dir / "schemas"
    if check:
        stale = stale_schemas(folder)
        for path in stale:
            app.console.print(f"out of date: {_display_path(path)}")
        if stale:
            app.console.error(
                f"{plural(len(stale), 'schema file')} in {_display_path(folder)} "
                f"{'is' if len(stale) == 1 else 'are'} missing or out of date",
                f"Run `personas schema --out {_display_path(folder)}` to regenerate them.",
            )
            return 1
        app.console.print(f"Schemas in {_display_path(folder)} are current.")
        return 0

    results = write_schemas(folder)
    for path, changed in results:
        app.console.print(f"{'wrote' if changed else 'unchanged'}: {_display_path(path)}")
    return 0


def _display_path(path: Path) -> str:
    """Format a path as the user would type it: relative to the current folder when below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
