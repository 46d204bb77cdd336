"""Global options anywhere on the line, and exit codes of usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler import __version__
from reconciler.cli import hoist_global_options


def _personas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from reconciler.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["validate", "--project", "demo"], ["--project", "demo", "validate"]),
        (["validate", "--project=demo", "--json"], ["--project=demo", "validate", "--json"]),
        (["plan", "-vv", "--no-color", "--debug"], ["-vv", "--no-color", "--debug", "plan"]),
        (["run", "--log-format", "json", "--select", "a"], ["--log-format", "json", "run", "--select", "a"]),
        (["validate", "--version"], ["--version", "validate"]),
        (["ingest", "--", "--project"], ["ingest", "--", "--project"]),
    ],
)
def test_hoist_moves_global_options_first(given, expected):
    assert hoist_global_options(given) == expected


def test_global_option_after_command_selects_project(tmp_path):
    demo = tmp_path / "demo"
    assert _personas("init", str(demo)).returncode == 0

    before = _personas("--project", str(demo), "validate")
    after = _personas("validate", "--project", str(demo))

    assert before.returncode == 0, before.stderr
    assert after.returncode == 0, after.stderr
    assert before.stdout == after.stdout


def test_version_after_command():
    result = _personas("validate", "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"personas, version {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["validate", "--no-such-option"],
        ["plan", "--format", "yaml"],
        ["--log-format", "xml", "validate"],
    ],
)
def test_usage_errors_exit_1_not_2(args):
    result = _personas(*args)

    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "--help" in result.stderr
    assert "Traceback" not in result.stderr


class _Terminal:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "expected"), [(None, True), ("", True), ("1", False)])
def test_no_color_variable_turns_colour_off(monkeypatch, no_color, expected):
    from reconciler.cli.console import Console

    monkeypatch.setattr(sys, "stdout", _Terminal())
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)

    assert Console()._use_color(err=False) is expected


def test_no_color_option_after_command(tmp_path):
    result = _personas("validate", "--no-color", "--project", str(tmp_path / "missing"))

    assert result.returncode == 1
    assert "\x1b[" not in result.stdout + result.stderr
    assert "does not exist" in result.stdout + result.stderr


def test_internal_error_is_one_line_without_debug(monkeypatch, capsys):
    from reconciler import cli

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli.cli, "main", broken)

    assert cli._run(["validate"], debug=False) == 1
    captured = capsys.readouterr()
    assert "internal error: RuntimeError: boom" in captured.err
    assert "Traceback" not in captured.err
    assert "--debug" in captured.err
