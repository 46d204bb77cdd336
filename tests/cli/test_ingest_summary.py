"""Counts in the ingest summary and in the identity resolution log agree with their numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PERSONAS = str(Path(sys.executable).parent / "personas")

ANN = {"type": "identify", "messageId": "m-1", "userId": "u_1", "timestamp": "2024-03-01T00:00:00Z"}


def test_single_counts_read_in_singular(tmp_path):
    (tmp_path / "personas.yaml").write_text("version: 1\nname: counts\n", encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(ANN) + "\n{broken\n", encoding="utf-8")

    result = subprocess.run(
        [PERSONAS, "--project", str(tmp_path), "-v", "ingest", str(events)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "Identity resolution: 1 message, 1 profile created, 0 merges, 0 merges refused, "
        "0 messages without a usable identifier."
    )
    assert "identity resolution: 1 message, 1 profile created, 0 merges, 0 merges refused\n" in result.stderr
    assert "  quarantined  1\n" in result.stdout
