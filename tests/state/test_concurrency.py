"""Many processes applying at once to one state: no lost update, on PostgreSQL and SQLite."""

from __future__ import annotations

import multiprocessing

import pytest

from reconciler.errors import StalePlanError
from reconciler.state import open_store

from .helpers import audit, change

WORKERS = 20
APPLIED, STALE = 0, 3


def apply_under_lock(url: str, index: int) -> None:
    """Take the lock, read the serial and apply on top of it, as `personas apply` does."""
    with open_store(url) as store, store.lock(timeout=60):
        snapshot = store.read()
        store.apply(snapshot.serial, snapshot.lineage, [change("create", f"audience.a{index:02d}")], audit(f"user{index}"))


def apply_at_serial_zero(url: str, index: int, lineage: str, barrier) -> None:
    """Apply a plan made at serial 0, all workers at the same moment and without the lock."""
    with open_store(url) as store:
        store.read()
        barrier.wait(60)
        try:
            store.apply(0, lineage, [change("create", f"audience.b{index:02d}")], audit(f"user{index}"))
        except StalePlanError:
            raise SystemExit(STALE) from None


def run_workers(target, args_of) -> list[int]:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=args_of(index)) for index in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    return sorted(process.exitcode for process in processes)


@pytest.mark.slow
def test_locked_applies_all_succeed_in_turn(state_url):
    with open_store(state_url) as store:
        store.initialize()

    exit_codes = run_workers(apply_under_lock, lambda index: (state_url, index))

    assert exit_codes == [APPLIED] * WORKERS
    with open_store(state_url) as store:
        snapshot = store.read()
        entries = store.audit_log()
    assert snapshot.serial == WORKERS
    assert sorted(snapshot.resources) == [f"audience.a{index:02d}" for index in range(WORKERS)]
    assert sorted(entry.serial_before for entry in entries) == list(range(WORKERS))


@pytest.mark.slow
def test_same_serial_applies_only_one_wins(state_url):
    with open_store(state_url) as store:
        store.initialize()
        lineage = store.read().lineage
    barrier = multiprocessing.get_context("fork").Barrier(WORKERS)

    exit_codes = run_workers(apply_at_serial_zero, lambda index: (state_url, index, lineage, barrier))

    assert exit_codes == [APPLIED] + [STALE] * (WORKERS - 1)
    with open_store(state_url) as store:
        snapshot = store.read()
        assert snapshot.serial == 1
        assert len(snapshot.resources) == 1
        assert len(store.audit_log()) == 1
