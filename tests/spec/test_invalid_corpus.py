"""Every invalid project under tests/spec/invalid/ reports exactly its expected diagnostics.

Each case folder contains a small project and `expected.yaml`, written by hand:
file, line, column, YAML path, code, severity, message and hint of every
diagnostic, in the order `personas validate` prints them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from reconciler.project import check_project

from .corpus import CORPUS, EXPECTED, case_names, materialize


def _expected(name: str, root: Path) -> list[dict]:
    items = YAML(typ="safe").load((CORPUS / name / EXPECTED).read_text()) or []
    for item in items:
        item["message"] = item["message"].replace("{root}", str(root))
    return items


def test_corpus_has_enough_cases():
    assert len(case_names()) >= 45


@pytest.mark.parametrize("name", case_names())
def test_invalid_project_reports_expected_diagnostics(name: str, tmp_path: Path):
    root = materialize(name, tmp_path / "project")

    first = check_project(root, env={})
    from_cache = check_project(root, env={})

    expected = _expected(name, root.resolve())
    assert [diagnostic.to_dict() for diagnostic in first.diagnostics] == expected
    assert [diagnostic.to_dict() for diagnostic in from_cache.diagnostics] == expected


@pytest.mark.parametrize("name", case_names())
def test_invalid_project_is_not_valid_unless_only_warned(name: str, tmp_path: Path):
    root = materialize(name, tmp_path / "project")

    result = check_project(root, env={})

    only_warnings = all(item["severity"] == "warning" for item in _expected(name, root))
    assert result.valid is only_warnings


def test_every_code_in_the_corpus_is_documented():
    from reconciler.spec import diagnostics

    codes = {item["code"] for name in case_names() for item in _expected(name, Path("/"))}

    assert codes <= set(diagnostics.__doc__.replace(",", " ").split())
