"""Every example project the repository ships is valid and already formatted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli

EXAMPLES = sorted(path.parent for path in (Path(__file__).resolve().parents[2] / "specs").glob("*/personas.yaml"))


def test_repository_ships_example_projects():
    assert [path.name for path in EXAMPLES] == ["cdnow", "shop"]


@pytest.mark.parametrize("project", EXAMPLES, ids=lambda path: path.name)
def test_example_project_is_formatted(project):
    result = CliRunner().invoke(cli, ["--project", str(project), "fmt", "--check"], standalone_mode=False)

    assert result.exception is None, result.output
    assert result.return_value in (0, None), result.output


@pytest.mark.parametrize("project", EXAMPLES, ids=lambda path: path.name)
def test_example_project_validates(project):
    result = CliRunner().invoke(cli, ["--project", str(project), "validate"], standalone_mode=False)

    assert result.exception is None, result.output
    assert result.return_value in (0, None), result.output
