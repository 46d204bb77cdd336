"""Docs, templates, help texts and schemas name only commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.cli import cli

REPO = Path(__file__).resolve().parents[2]

# `personas run` in running text, or `    personas run` on an indented code line.
MENTION = re.compile(r"`personas ([a-z][a-z-]*)|^ {4,}(?:\$ )?personas ([a-z][a-z-]*)", re.MULTILINE)


def texts() -> list[Path]:
    """Return every file a user reads: docs, README, the init templates, schemas and the package's messages."""
    package = REPO / "reconciler"
    return sorted(
        [*REPO.glob("docs/*.md"), REPO / "README.md", *REPO.glob("schemas/*.json"),
         *package.rglob("*.yaml"), *package.rglob("*.py"), REPO / "scripts" / "gen_cli_docs.py"]
    )


def mentioned_commands(text: str) -> set[str]:
    return {first or second for first, second in MENTION.findall(text)}


def test_mentions_are_found_in_text_and_code_lines():
    text = "Run `personas status` daily.\n\n    personas lift buyers\n\npersonas keeps state.\n"
    assert mentioned_commands(text) == {"status", "lift"}


@pytest.mark.parametrize("path", texts(), ids=lambda path: path.relative_to(REPO).as_posix())
def test_file_names_only_existing_commands(path):
    commands = set(cli.list_commands(None))

    unknown = mentioned_commands(path.read_text(encoding="utf-8")) - commands

    assert unknown == set(), f"{path.relative_to(REPO)} names commands that do not exist: {sorted(unknown)}"
