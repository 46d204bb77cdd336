"""The confirmation prompt of `personas apply` on a real terminal (a pseudo-terminal)."""

from __future__ import annotations

import os
import subprocess

import pytest

from .conftest import PERSONAS, Project

TRAIT = "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: orders}\nspec: {type: event_counter, event: A}\n"


def apply_on_terminal(project: Project, answer: str) -> subprocess.CompletedProcess:
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [*PERSONAS, "--project", str(project.root), "apply"],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **project.env()},
        )
        os.write(leader, answer.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture
def sqlite_project(tmp_path) -> Project:
    project = Project(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
    project.write("personas.yaml", "version: 1\nname: shop\nstate: ${PERSONAS_STATE_URL}\n")
    project.write("traits/orders.yaml", TRAIT)
    return project


def test_apply_asks_and_applies_on_yes(sqlite_project):
    result = apply_on_terminal(sqlite_project, "yes")
    assert result.returncode == 0, result.stderr
    assert "\nDo you want to apply these changes? Only 'yes' will be accepted: Apply complete: 1 created" in result.stdout
    store = sqlite_project.store()
    try:
        assert store.read().serial == 1
    finally:
        store.close()


def test_apply_cancels_on_any_other_answer(sqlite_project):
    result = apply_on_terminal(sqlite_project, "y")
    assert result.returncode == 1
    assert result.stdout.endswith("Only 'yes' will be accepted: Apply cancelled; nothing was written.\n")
    store = sqlite_project.store()
    try:
        assert store.read().serial == 0
    finally:
        store.close()
