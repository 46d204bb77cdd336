"""Reading edge cases: special files, deep nesting, typed keys, and documents after a syntax error."""

from __future__ import annotations

import os

import pytest

from reconciler.project import check_project
from reconciler.spec.loader import parse_yaml_text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_named_pipe_is_skipped(write_project):
    root = write_project()
    os.mkfifo(root / "fifo.yaml")

    result = check_project(root, env={"CRM_TOKEN": "t", "CRM_SIGNING_SECRET": "s"})

    assert result.valid
    [warning] = result.diagnostics
    assert (warning.file, warning.code, warning.severity, warning.message) == (
        "fifo.yaml", "file-skipped", "warning", "not a regular file; skipped",
    )


def test_deep_nesting_points_at_deep_node():
    parsed = parse_yaml_text("a:\n  b: " + "[" * 300 + "]" * 300 + "\n", "deep.yaml")

    [problem] = parsed.diagnostics
    assert problem.message == "the document nests more than 200 levels deep"
    # `b` is at depth 1 and its list at 2, so the 200th `[` (column 6 + 199) is the first too deep
    assert (problem.line, problem.column) == (2, 205)
    assert problem.path.startswith("a.b[0][0]")
    assert "alias" not in problem.hint


def test_number_and_boolean_keys_differ():
    parsed = parse_yaml_text("spec: {1: x, true: y}\n", "f.yaml")

    assert [(d.path, d.message) for d in parsed.diagnostics] == [
        ('spec["1"]', "keys must be text; got the number 1"),
        ("spec.true", "keys must be text; got the boolean true"),
    ]


def test_repeated_number_key_is_duplicate():
    parsed = parse_yaml_text("a:\n  1: x\n  1: y\n", "f.yaml")

    assert [(d.code, d.line) for d in parsed.diagnostics] == [("invalid-key", 2), ("invalid-key", 3), ("duplicate-key", 3)]


def test_documents_after_syntax_error_are_read():
    text = "a: 1\n---\nb: [1, 2\n---\nc: 3\n---\nd: 4\n"

    parsed = parse_yaml_text(text, "f.yaml")

    assert [(d.line, d.data) for d in parsed.documents] == [(1, {"a": 1}), (5, {"c": 3}), (7, {"d": 4})]
    [problem] = parsed.diagnostics
    assert (problem.line, problem.column) == (4, 1)
    assert "reading went on at the next `---`" in problem.hint


def test_tab_indentation_asks_for_spaces():
    [problem] = parse_yaml_text("a:\n\tb: 1\n", "f.yaml").diagnostics

    assert problem.message == "YAML syntax error: tabs are not allowed for indentation in YAML"
    assert problem.hint.startswith("Indent with spaces.")
