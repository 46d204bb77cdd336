"""Locks: contention, waiting, holders that die, and force-unlock."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from reconciler.errors import LockError, StateError
from reconciler.state import open_store, records
from reconciler.state import tables as state_tables

from .helpers import dump_tables, engine_for

# Child process: takes the lock, prints its id, then dies by SIGKILL or sleeps until killed.
HOLDER = """
import os, signal, sys, time
from reconciler.state import open_store
store = open_store(sys.argv[1])
with store.lock(operation="run-test") as info:
    print(info.id, flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
"""


@pytest.fixture
def holder_process(state_url):
    """Start a child process holding the state lock; returns (process, lock id)."""
    children = []

    def start(mode: str) -> tuple[subprocess.Popen, str]:
        child = subprocess.Popen([sys.executable, "-c", HOLDER, state_url, mode], stdout=subprocess.PIPE, text=True)
        children.append(child)
        lock_id = child.stdout.readline().strip()
        assert lock_id, "the child process did not take the lock"
        return child, lock_id

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_second_lock_fails_at_once_naming_holder(state_url):
    with open_store(state_url) as first, open_store(state_url) as second:
        with first.lock(operation="apply") as held:
            started = time.monotonic()
            with pytest.raises(LockError) as caught:
                with second.lock(timeout=0):
                    pass
            elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert caught.value.message == (
        f"the state is locked by {held.holder} (pid {os.getpid()}, apply) "
        f"since {records.format_time(held.since)}; lock id {held.id}"
    )
    assert caught.value.hint == (
        "Wait and retry, pass --lock-timeout to wait for it, or run "
        f"`personas force-unlock {held.id}` if that process is gone."
    )
    assert caught.value.holder["pid"] == os.getpid()
    assert held.holder == f"{records.current_user()}@{records.current_host()}"


def test_lock_with_timeout_waits_for_release(state_url):
    with open_store(state_url) as first, open_store(state_url) as second:
        taken = threading.Event()

        def hold_briefly() -> None:
            with first.lock(operation="apply"):
                taken.set()
                time.sleep(0.6)

        thread = threading.Thread(target=hold_briefly)
        thread.start()
        taken.wait(10)
        started = time.monotonic()
        with second.lock(operation="plan", timeout=10) as info:
            waited = time.monotonic() - started
            assert info.operation == "plan"
        thread.join()

    assert waited >= 0.3


def test_lock_timeout_expires_with_lock_error(state_url):
    with open_store(state_url) as first, open_store(state_url) as second:
        with first.lock():
            started = time.monotonic()
            with pytest.raises(LockError, match="the state is locked by") as caught:
                with second.lock(timeout=0.5):
                    pass

    assert time.monotonic() - started >= 0.5
    assert caught.value.message.endswith("(still held after waiting 0.5s)")
    assert "wait longer with a larger --lock-timeout" in caught.value.hint


def test_lock_is_released_after_error_in_block(state_url):
    with open_store(state_url) as store:
        with pytest.raises(RuntimeError):
            with store.lock():
                raise RuntimeError("apply failed")

        with store.lock(timeout=0):
            pass

    assert dump_tables(state_url, ["locks"]) == {"locks": []}


def test_run_lock_is_separate_from_state_lock(state_url):
    with open_store(state_url) as first, open_store(state_url) as second:
        with first.lock(name="run", operation="run"):
            with second.lock(name="state", timeout=0):
                pass
            with pytest.raises(LockError, match="^the run lock is held by"):
                with second.lock(name="run", timeout=0):
                    pass


def test_lock_creates_missing_store(state_url):
    with open_store(state_url) as store:
        assert not store.exists()

        with store.lock():
            assert store.exists()


def test_killed_holder_leaves_no_lock(state_url, holder_process, caplog):
    child, lock_id = holder_process("die")
    child.wait(10)
    assert child.returncode == -signal.SIGKILL

    caplog.set_level(logging.WARNING, logger="reconciler.state.locks")
    with open_store(state_url) as store:
        # PostgreSQL may need a moment to notice the closed connection.
        with store.lock(timeout=10) as info:
            assert info.id != lock_id
            assert [row[1] for row in dump_tables(state_url, ["locks"])["locks"]] == [info.id]


def test_dead_sqlite_holder_is_cleared_with_log_line(tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/state.db"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, url, "die"], stdout=subprocess.PIPE, text=True)
    lock_id = child.stdout.readline().strip()
    child.wait(10)

    caplog.set_level(logging.WARNING, logger="reconciler.state.locks")
    with open_store(url) as store, store.lock(timeout=0):
        pass

    [message] = [r.getMessage() for r in caplog.records if r.name == "reconciler.state.locks"]
    assert message.startswith(f"cleared the state lock {lock_id} left by ")
    assert f"(pid {child.pid}, run-test)" in message


def test_sqlite_lock_of_other_host_needs_force_unlock(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as store:
        store.initialize()
        lock_id = str(uuid.uuid4())
        engine = engine_for(url)
        with engine.begin() as connection:
            connection.execute(
                sa.insert(state_tables.locks).values(
                    name="state", id=lock_id, holder="bob@elsewhere", operation="apply",
                    host="elsewhere", pid=1, since=records.utc_now(),
                )
            )
        engine.dispose()
        with pytest.raises(LockError, match=f"locked by bob@elsewhere \\(pid 1, apply\\) since .*; lock id {lock_id}"):
            with store.lock(timeout=0):
                pass

        removed, ended = store.force_unlock(lock_id)

        assert (removed.id, removed.holder, ended) == (lock_id, "bob@elsewhere", False)
        with store.lock(timeout=0):
            pass


def test_force_unlock_frees_lock_of_live_holder(state_url, holder_process):
    child, lock_id = holder_process("sleep")

    with open_store(state_url) as store:
        removed, ended = store.force_unlock(lock_id)
        assert removed.operation == "run-test"
        # PostgreSQL ends the holder's session; a SQLite lock is only its row.
        assert ended is (not state_url.startswith("sqlite"))

        with store.lock(timeout=10):
            pass


def test_force_unlock_of_unknown_id_fails(state_url):
    with open_store(state_url) as store:
        store.initialize()

        with pytest.raises(StateError, match="^no lock with id 1234 is held$"):
            store.force_unlock("1234")
