"""`personas fmt` never changes what a file means: anchors, aliases and special files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.spec.fmt import format_text

from .helpers import documents, run_cli

ALIAS_BEFORE_ANCHOR = """\
apiVersion: personas/v1
kind: Audience
metadata:
  name: quiet
spec:
  exclude: &x {event: Complaint}
  include: {not: *x}
"""

UNUSED_ANCHOR = """\
apiVersion: personas/v1
kind: Audience
metadata:
  name: quiet
spec:
    holdout: &share 10%
    include: {event: Signed Up}
"""


def test_alias_is_never_moved_before_its_anchor():
    notes: list[str] = []

    formatted = format_text(ALIAS_BEFORE_ANCHOR, source="audiences/quiet.yaml", notes=notes)

    assert formatted == ALIAS_BEFORE_ANCHOR
    assert notes == ["audiences/quiet.yaml:6: cannot reorder keys around the anchor `&x`; formatted indentation only"]


def test_anchored_document_still_gets_indentation():
    indented = ALIAS_BEFORE_ANCHOR.replace("  exclude", "    exclude").replace("  include", "    include")
    notes: list[str] = []

    formatted = format_text(indented, source="a.yaml", notes=notes)

    assert formatted == ALIAS_BEFORE_ANCHOR
    assert len(notes) == 1


def test_unused_anchor_is_kept_when_keys_move():
    formatted = format_text(UNUSED_ANCHOR, source="a.yaml")

    assert formatted == (
        "apiVersion: personas/v1\nkind: Audience\nmetadata:\n  name: quiet\n"
        "spec:\n  include: {event: Signed Up}\n  holdout: &share 10%\n"
    )


def test_unused_anchor_on_a_mapping_is_kept():
    text = (
        "apiVersion: personas/v1\nkind: Audience\nmetadata: {name: a}\n"
        "spec:\n  include: &inc {window: {to: 1d, from: 30d}, event: A}\n  exclude: &ex\n    event: B\n  entity: user\n"
    )

    formatted = format_text(text, source="a.yaml")

    assert formatted == (
        "apiVersion: personas/v1\nkind: Audience\nmetadata: {name: a}\n"
        "spec:\n  entity: user\n  include: &inc {event: A, window: {from: 30d, to: 1d}}\n  exclude: &ex\n    event: B\n"
    )


def test_fmt_command_warns_and_keeps_meaning(tmp_path: Path):
    (tmp_path / "personas.yaml").write_text("version: 1\nname: acme\n")
    path = tmp_path / "quiet.yaml"
    path.write_text(ALIAS_BEFORE_ANCHOR)

    result = run_cli("fmt", "--project", str(tmp_path))

    assert result.exit_code == 0
    assert "cannot reorder keys around the anchor `&x`" in result.stderr
    assert documents(path)[0]["spec"] == {"exclude": {"event": "Complaint"}, "include": {"not": {"event": "Complaint"}}}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_fmt_skips_a_named_pipe(tmp_path: Path):
    (tmp_path / "personas.yaml").write_text("version: 1\nname: acme\n")
    os.mkfifo(tmp_path / "fifo.yaml")

    result = run_cli("fmt", "--check", "--project", str(tmp_path))

    assert result.exit_code == 0
    assert "fifo.yaml: not a regular file; skipped" in result.stderr
