"""Paths and helpers shared by the tests of the bundled data, the example projects and the benchmarks."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
# The raw inputs are not part of the repository, but CI keeps a copy of them beside the clone.
RAW_DATA = REPOSITORY.parent / "shared" / "data"


def run_script(*arguments: str | Path) -> subprocess.CompletedProcess:
    """Run a Python script of the repository as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, *map(str, arguments)], capture_output=True, text=True, cwd=REPOSITORY, timeout=300
    )


def read_messages(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def raw_input(name: str) -> Path:
    """Return the path of a raw input file, skipping the test when it is not beside the repository."""
    path = RAW_DATA / name
    if not path.is_file():
        pytest.skip(f"raw input {path} not found; it sits beside the repository clone in CI")
    return path
