"""Fixtures of the sync tests: a project workspace and a local webhook receiver."""

from __future__ import annotations

import pytest

from .harness import Workspace, start_receiver


@pytest.fixture
def receiver():
    server = start_receiver()
    yield server
    server.close()


@pytest.fixture
def workspace(tmp_path):
    return Workspace(tmp_path / "project")
