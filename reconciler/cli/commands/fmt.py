"""`personas fmt`: rewrite spec files in canonical form, comments kept."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import AppContext, pass_app
from reconciler.spec.diagnostics import plural


@click.command("fmt")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file is not formatted, listing it.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of what would change.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@pass_app
def command(app: AppContext, check: bool, show_diff: bool, paths: tuple[Path, ...]) -> int:
    """Format personas.yaml and resource files canonically.

    PATHS are files or folders; without them, every *.yaml and *.yml file of
    the project (dot-folders skipped). Formatting keeps comments, quotes and
    `---` separators, puts keys in the order of the spec reference (unknown
    keys last, never removed), indents by two spaces with list items under
    their key, and ends each file with one newline. Files with YAML errors
    are reported and left unchanged. Writes are atomic.

    Exit codes: 0 when every file is (or now is) formatted; 1 when a file has
    a YAML error, or, with --check, when a file would change.
    """
    from reconciler.spec.fmt import format_file, unified_diff, write_file
    from reconciler.spec.fmt_cache import FormattedCache

    files = _collect(paths or (app.project_dir,))
    if not files:
        app.console.warning(f"no *.yaml or *.yml files found in {', '.join(_display_path(p) for p in paths or (app.project_dir,))}")
        return 0

    # Only a project folder gets a cache: fmt run on loose files writes nothing beside them.
    cache = FormattedCache(app.project_dir) if (app.project_dir / "personas.yaml").is_file() else None
    changed, failed, skipped = [], 0, 0
    for path in files:
        display_name = _display_path(path)
        result = format_file(path, display_name=display_name, cache=cache)
        for note in result.notes:
            app.console.warning(note)
        if result.error is None and result.formatted is None:
            skipped += 1  # not a regular file
            continue
        if result.error is not None:
            app.console.error(result.error.message, result.error.hint)
            failed += 1
            continue
        if not result.changed:
            continue
        changed.append(display_name)
        if show_diff:
            app.console.print(unified_diff(result, display_name), nl=False)
        elif check:
            app.console.print(f"would reformat: {display_name}")
        else:
            write_file(path, result.formatted)
            app.console.print(f"formatted: {display_name}")

    if cache is not None:
        cache.save()
    _summarise(app, len(files) - skipped, changed, failed, write=not (check or show_diff))
    return 1 if failed or (check and changed) else 0


def _summarise(app: AppContext, total: int, changed: list[str], failed: int, *, write: bool) -> None:
    verb = "formatted" if write else "would be reformatted"
    parts = [f"{plural(len(changed), 'file')} {verb}", f"{total - len(changed) - failed} unchanged"]
    if failed:
        parts.append(f"{failed} with errors, left unchanged")
    app.console.print(", ".join(parts) + ".", err=True)


def _collect(paths: tuple[Path, ...]) -> list[Path]:
    """Files named directly, plus, for each folder named, the files `personas validate` reads there."""
    from reconciler.project import PROJECT_FILE, iter_resource_files

    found: dict[Path, None] = {}
    for path in paths:
        if not path.is_dir():
            found[path] = None
            continue
        if (path / PROJECT_FILE).is_file():
            found[path / PROJECT_FILE] = None
        for file, _ in iter_resource_files(path):
            found[file] = None
    return list(found)


def _display_path(path: Path) -> str:
    """Format a path as the user would type it: relative to the current folder when below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
