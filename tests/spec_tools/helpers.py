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
    """List every folder containing a personas.yaml: the examples in specs/ and the test projects in tests/."""
    found = sorted(path.parent for path in (REPO / "specs").rglob("personas.yaml"))
    found += sorted(path.parent for path in (REPO / "tests").rglob("personas.yaml"))
    return found


def example_files() -> list[Path]:
    """List every YAML file of the example and test projects, and the init templates."""
    files: list[Path] = []
    for project in example_projects() + [TEMPLATES]:
        files += [path for path in sorted(project.rglob("*.y*ml")) if not _hidden(path, project)]
    return files


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


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
