"""The README's example of an events file is a file `personas ingest` stores whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
PERSONAS = str(Path(sys.executable).parent / "personas")


def example_lines() -> list[str]:
    """Return the lines of the JSON block in the README's "A project of your own" section."""
    section = README.read_text(encoding="utf-8").split("## A project of your own", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the section shows no example of an events file"
    return block.group(1).splitlines()


def test_readme_events_example_ingests_cleanly(tmp_path):
    (tmp_path / "personas.yaml").write_text("version: 1\nname: readme\n", encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(example_lines()) + "\n", encoding="utf-8")

    result = subprocess.run(
        [PERSONAS, "--project", str(tmp_path), "ingest", str(events)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:5] == ["  read         2", "  stored       2", "  duplicates   0", "  quarantined  0"]
