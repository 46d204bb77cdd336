"""State URLs that cannot work fail with a StateError that says what to fix."""

from __future__ import annotations

import pytest

from reconciler.errors import StateError
from reconciler.state import open_store


def test_missing_driver_is_named():
    with pytest.raises(StateError) as raised:
        with open_store("postgresql+psycopg2://postgres@127.0.0.1/test") as store:
            store.read()

    assert "driver is not installed" in raised.value.message
    assert "psycopg2" in raised.value.message
    assert "postgresql+psycopg://" in raised.value.hint


def test_state_file_under_a_regular_file_fails_cleanly(tmp_path):
    (tmp_path / "afile").write_text("not a folder")

    with pytest.raises(StateError) as raised:
        with open_store(f"sqlite:///{tmp_path}/afile/state.db") as store:
            store.initialize()

    assert "cannot create the folder of the state file" in raised.value.message


@pytest.mark.parametrize("reader", ["store", "sqlite_reader"])
def test_state_file_that_is_a_folder_is_rejected(tmp_path, reader):
    from reconciler.state import open_reader

    folder = tmp_path / "state.db"
    folder.mkdir()
    opener = open_store if reader == "store" else open_reader

    with pytest.raises(StateError) as raised:
        with opener(f"sqlite:///{folder}") as store:
            store.read()

    assert "is not a regular file" in raised.value.message
