"""The fmt cache: canonical files are not formatted again, and a changed file never passes on a stale entry."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.spec.fmt import format_file
from reconciler.spec.fmt_cache import CACHE_FILE, FormattedCache, file_key

from .helpers import run_cli

CANONICAL = "apiVersion: personas/v1\nkind: Trait\nmetadata:\n  name: t\nspec:\n  type: event_counter\n  event: E\n"
SCRAMBLED = "kind: Trait\napiVersion: personas/v1\nmetadata:\n  name: t\nspec:\n  event: E\n  type: event_counter\n"


def _project(tmp_path: Path) -> Path:
    (tmp_path / "personas.yaml").write_text("version: 1\nname: acme\n")
    (tmp_path / "t.yaml").write_text(CANONICAL)
    return tmp_path


def test_check_records_canonical_files(tmp_path: Path):
    root = _project(tmp_path)

    result = run_cli("fmt", "--check", "--project", str(root))

    assert result.exit_code == 0
    saved = json.loads((root / CACHE_FILE).read_text())
    assert sorted(saved["files"]) == sorted([
        file_key(CANONICAL.encode(), "t.yaml"), file_key(b"version: 1\nname: acme\n", "personas.yaml"),
    ])


def test_cached_file_is_not_formatted_again(tmp_path: Path):
    root = _project(tmp_path)
    cache = FormattedCache(root)
    # A scrambled text recorded as canonical shows that the entry, not the formatter, decided.
    cache.add(file_key(SCRAMBLED.encode(), "t.yaml"))
    (root / "t.yaml").write_text(SCRAMBLED)

    result = format_file(root / "t.yaml", cache=cache)

    assert result.formatted == SCRAMBLED


def test_changed_file_is_checked_after_caching(tmp_path: Path):
    root = _project(tmp_path)
    assert run_cli("fmt", "--check", "--project", str(root)).exit_code == 0
    (root / "t.yaml").write_text(SCRAMBLED)

    result = run_cli("fmt", "--check", "--project", str(root))

    assert result.exit_code == 1
    assert "would reformat" in result.stdout


def test_cache_from_other_rules_is_ignored(tmp_path: Path):
    root = _project(tmp_path)
    (root / CACHE_FILE).parent.mkdir(parents=True)
    (root / CACHE_FILE).write_text(json.dumps({"stamp": "older rules", "files": [file_key(SCRAMBLED.encode(), "t.yaml")]}))

    assert file_key(SCRAMBLED.encode(), "t.yaml") not in FormattedCache(root)
