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


def test_interrupt_at_prompt_cancels_without_writing(sqlite_project):
    import signal
    import threading

    leader, follower = os.openpty()
    output: list[str] = []
    prompted = threading.Event()

    def read_stdout(stream) -> None:
        for chunk in iter(lambda: stream.read(1), ""):
            output.append(chunk)
            if "".join(output).endswith("Only 'yes' will be accepted: "):
                prompted.set()

    try:
        process = subprocess.Popen(
            [*PERSONAS, "--project", str(sqlite_project.root), "apply"],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **sqlite_project.env()},
        )
        reader = threading.Thread(target=read_stdout, args=(process.stdout,))
        reader.start()
        assert prompted.wait(60), "".join(output)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        stderr = process.stderr.read()
    finally:
        os.close(follower)
        os.close(leader)

    assert process.returncode == 1, stderr
    assert "".join(output).endswith("Apply cancelled; nothing was written.\n")
    store = sqlite_project.store()
    try:
        assert store.read().serial == 0
    finally:
        store.close()
