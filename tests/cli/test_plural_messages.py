"""Summaries of fmt and schema count in the singular for one file."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from reconciler.cli import _run

TRAIT = "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: orders}\nspec: {type: event_counter,   event: A}\n"


@dataclass
class Result:
    exit_code: int
    stderr: str


def run(*args: str) -> Result:
    """Run the CLI in-process with its real exit codes."""
    with CliRunner().isolation() as (_, err, _):
        code = _run(list(args), debug=False)
        return Result(code, err.getvalue().decode())


def test_fmt_check_counts_one_file(tmp_path):
    (tmp_path / "personas.yaml").write_text("version: 1\nname: shop\n", encoding="utf-8")
    (tmp_path / "orders.yaml").write_text(TRAIT, encoding="utf-8")

    result = run("--project", str(tmp_path), "fmt", "--check")

    assert result.exit_code == 1
    assert result.stderr.endswith("1 file would be reformatted, 1 unchanged.\n")


def test_schema_check_counts_one_file(tmp_path):
    folder = tmp_path / "schemas"
    assert run("schema", "--out", str(folder)).exit_code == 0
    (folder / "trait.schema.json").write_text("{}", encoding="utf-8")

    result = run("schema", "--out", str(folder), "--check")

    assert result.exit_code == 1
    assert "Error: 1 schema file in " in result.stderr
    assert " is missing or out of date\n" in result.stderr
