"""Shared helpers of the spec tools tests: where the examples are, and how to read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "reconciler" / "templates" / "init"


def documents(path: Path) -> list[Any]:
    """Return the plain data of each non-empty document of a YAML file, read as `personas validate` reads it."""
    from reconciler.spec.loader import parse_yaml_text

    parsed = parse_yaml_text(path.read_text(encoding="utf-8"), path.name)
    assert not parsed.diagnostics, f"{path}: {parsed.diagnostics}"
    return [document.data for document in parsed.documents]


def example_projects() -> list[Path]:
    """List the example projects in specs/ and the test projects in tests/ that validate.

    Test folders also hold deliberately invalid projects; those test the
    validator, not the spec tools, so they are left out.
    """
    from reconciler.project import check_project

    examples = sorted(path.parent for path in (REPO / "specs").rglob("personas.yaml"))
    candidates = sorted(path.parent for path in (REPO / "tests").rglob("personas.yaml"))
    return examples + [folder for folder in candidates if check_project(folder).valid]


def example_files() -> list[Path]:
    """List every spec file of the example and test projects, and the init templates."""
    from reconciler.project import iter_resource_files

    files: list[Path] = []
    for project in example_projects() + [TEMPLATES]:
        if (project / "personas.yaml").is_file():
            files.append(project / "personas.yaml")
        files += [path for path, _ in iter_resource_files(project)]
    return files


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """Run `personas ARGS` through its real entry point, with exit code and both streams captured."""
    from click.testing import CliRunner

    from reconciler.cli import main

    code = 0
    with CliRunner().isolation() as streams:
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(code, stdout.decode(), stderr.decode())
