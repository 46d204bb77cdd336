"""The README quickstart's main job, run in a temporary copy of the repository."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def _copy_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY, capture_output=True, check=False,
    )
    if listed.returncode != 0:
        pytest.fail(f"git ls-files failed in {REPOSITORY}: {listed.stderr.decode(errors='replace')}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPOSITORY / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _run_quickstart(copy: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in ("PERSONAS_WAREHOUSE_URL", "PERSONAS_STATE_URL", "NO_COLOR"):
        env.pop(name, None)
    return subprocess.run(["bash", "quickstart.sh"], cwd=copy, env=env, capture_output=True, text=True, timeout=600)


def test_quickstart_runs_the_cdnow_example_end_to_end(tmp_path):
    _copy_repository(tmp_path)

    first = _run_quickstart(tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"^\s*stored\s+69,659$", first.stdout, re.MULTILINE)
    assert "Plan: 18 to create" in first.stdout
    assert "audience.winback" in first.stdout
    winback = tmp_path / "specs/cdnow/exports/csv/winback.csv"
    with winback.open(newline="") as handle:
        members = list(csv.DictReader(handle))
    assert len(members) > 1000
    assert f"{winback.relative_to(tmp_path)}" in first.stdout


def test_quickstart_twice_ingests_and_sends_nothing_new(tmp_path):
    _copy_repository(tmp_path)
    assert _run_quickstart(tmp_path).returncode == 0

    second = _run_quickstart(tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"^\s*stored\s+0$", second.stdout, re.MULTILINE)
    assert re.search(r"^\s*duplicates\s+69,659$", second.stdout, re.MULTILINE)
    assert "No changes" in second.stdout
    assert "sync winback -> crm_csv: ok, sent 0\n" in second.stdout
