"""`personas init DIR`: a new project that validates, with editor schemas and comments."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import click

from reconciler.cli import AppContext, pass_app
from reconciler.errors import UsageError

# Template file -> path in the new project. The .gitignore template is stored
# as `gitignore`, because `*` in Python's glob patterns (package data) does not
# match names starting with a dot.
TEMPLATE_FILES = {
    "personas.yaml": "personas.yaml",
    "traits/orders_90d.yaml": "traits/orders_90d.yaml",
    "audiences/repeat_buyers.yaml": "audiences/repeat_buyers.yaml",
    "destinations/exports.yaml": "destinations/exports.yaml",
    "gitignore": ".gitignore",
}
_NAME_LINE_RE = re.compile(r"^name: .*$", re.MULTILINE)


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_app
def command(app: AppContext, directory: Path) -> int:
    """Create a new project in DIRECTORY (relative to the current folder).

    The project contains personas.yaml, one trait, one audience and one `file`
    destination writing to exports/, all commented for a first read; JSON
    Schemas in schemas/ for editors; and a .gitignore for .personas/ (the
    local warehouse and state) and exports/. DIRECTORY may exist if empty.
    """
    from reconciler.spec.schema import write_schemas

    _check_target_is_empty(directory)
    name = project_name(directory.resolve().name)
    directory.mkdir(parents=True, exist_ok=True)
    created = []
    for template, target in TEMPLATE_FILES.items():
        text = _template(template)
        if target == "personas.yaml":
            text = _NAME_LINE_RE.sub(f"name: {name}", text, count=1)
        path = directory / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        created.append(target)
    created += [path.relative_to(directory).as_posix() for path, _ in write_schemas(directory / "schemas")]

    app.console.print(f"Created project {name} in {directory.as_posix()}/:")
    for target in sorted(created):
        app.console.print(f"  {target}")
    app.console.print(f"Next: cd {directory.as_posix()} && personas validate && personas plan")
    return 0


def project_name(folder_name: str) -> str:
    """Derive a project name from a folder name: lower case, [a-z0-9_-] only, starting with a letter."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder_name.lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"personas-{name}".rstrip("-")
    return name[:63].rstrip("-_")


def _check_target_is_empty(directory: Path) -> None:
    if directory.is_dir() and any(directory.iterdir()):
        raise UsageError(
            f"{directory} already exists and is not empty; init never overwrites files",
            hint="Choose a new or empty folder, such as `personas init my-project`.",
        )


def _template(name: str) -> str:
    return resources.files("reconciler").joinpath("templates", "init", name).read_text(encoding="utf-8")
