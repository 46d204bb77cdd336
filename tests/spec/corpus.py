"""Helpers for the corpus of invalid projects under tests/spec/invalid/.

Each case is a folder holding a small project and `expected.yaml`, the list
of diagnostics validation must report, every field written out. A case
without its own personas.yaml gets `BASE_PROJECT_FILE`, unless it contains a
`.no-project-file` marker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CORPUS = Path(__file__).parent / "invalid"
BASE_PROJECT_FILE = "version: 1\nname: cases\n"
EXPECTED = "expected.yaml"


def case_names() -> list[str]:
    return sorted(path.name for path in CORPUS.iterdir() if path.is_dir())


def materialize(name: str, target: Path) -> Path:
    """Copy a case into `target` as a project folder, without its expectations."""
    source = CORPUS / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(EXPECTED, ".no-project-file"))
    marker = (source / ".no-project-file").exists()
    if not marker and not (target / "personas.yaml").exists():
        (target / "personas.yaml").write_text(BASE_PROJECT_FILE)
    return target
