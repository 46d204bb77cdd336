"""`personas profile delete` run as a script runs it: without a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PERSONAS = str(Path(sys.executable).parent / "personas")

BOB = {
    "type": "identify", "messageId": "m1", "userId": "bob_1", "traits": {"email": "bob@example.com"},
    "timestamp": "2024-03-01T00:00:00Z",
}


def personas(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PERSONAS, "--project", str(project), *args], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture
def project(tmp_path) -> Path:
    """An applied DuckDB project holding one person, bob."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "personas.yaml").write_text("version: 1\nname: erase\n", encoding="utf-8")
    (folder / "events.jsonl").write_text(json.dumps(BOB) + "\n", encoding="utf-8")
    assert personas(folder, "apply", "--auto-approve").returncode == 0
    assert personas(folder, "ingest", str(folder / "events.jsonl")).returncode == 0
    return folder


def test_delete_without_terminal_fails_at_once(project):
    result = personas(project, "profile", "delete", "bob@example.com")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: refusing to erase without confirmation: no terminal to ask; pass --yes to confirm\n"
        "Nothing was erased. Add --yes when running without a terminal, as in scripts and CI.\n"
    )
    assert personas(project, "profile", "show", "bob@example.com").returncode == 0


def test_delete_with_yes_counts_in_singular(project):
    result = personas(project, "profile", "delete", "bob@example.com", "--yes")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Erased 1 profile holding 2 identifier values.\n"
        "  personas_events                    1 row deleted\n"
        "  personas_identifiers               2 rows deleted\n"
        "  personas_message_profiles          1 row deleted\n"
        "  personas_profiles                  1 row deleted\n"
        "  file destination files rewritten: 0\n"
    )
    assert personas(project, "profile", "show", "bob@example.com").returncode == 1
