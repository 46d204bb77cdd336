"""Projects on disk, a state store per backend, and a CLI runner that captures everything."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

PERSONAS = [str(Path(sys.executable).with_name("personas"))]


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A project folder whose state lives at `state_url`; files are written with `write`."""

    def __init__(self, root: Path, state_url: str) -> None:
        self.root = root
        self.state_url = state_url

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()

    def env(self, **extra: str) -> dict[str, str]:
        return {"PERSONAS_STATE_URL": self.state_url, **extra}

    def run(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        """Run the CLI in this process, as `main` does, capturing stdout and stderr apart."""
        from reconciler.cli import _run, hoist_global_options

        argv = hoist_global_options(["--project", str(self.root), *args])
        runner = CliRunner()
        with runner.isolation(input=input, env={**self.env(), **(env or {})}) as (out, err, _):
            code = _run(argv, "--debug" in argv)
        return Result(code, out.getvalue().decode(), err.getvalue().decode())

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start the installed `personas` in a separate process."""
        full_env = {**os.environ, **self.env(), **(env or {})}
        return subprocess.Popen(
            [*PERSONAS, "--project", str(self.root), *args],
            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )

    def store(self):
        from reconciler.state import open_store

        return open_store(self.state_url)


PROJECT_FILE = """
version: 1
name: shop
state: ${PERSONAS_STATE_URL}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def project(tmp_path, state_url) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, state_url)
    project.write("personas.yaml", PROJECT_FILE)
    return project


def dump_state(store) -> dict[str, list[tuple]]:
    """Every row of every table of a state store, for comparisons and for searching text."""
    import sqlalchemy as sa

    dump = {}
    metadata = sa.MetaData()
    metadata.reflect(store.engine)
    with store.engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            dump[name] = sorted(tuple(str(value) for value in row) for row in connection.execute(sa.select(table)))
    return dump
