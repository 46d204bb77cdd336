"""Fixtures of the state store tests: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from reconciler.state import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    """The URL of a store that does not exist yet: a SQLite file in a missing folder, or an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/project/.personas/state.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(state_url):
    with open_store(state_url) as opened:
        yield opened
