"""Run and sync bookkeeping."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from reconciler.errors import StateError
from reconciler.state import RunResourceRecord, SyncRecord, open_store

AS_OF = datetime(1998, 7, 1, tzinfo=timezone.utc)


def sync(run_id: str, audience: str, destination: str, **counts) -> SyncRecord:
    return SyncRecord(
        run_id=run_id,
        audience=audience,
        audience_id=f"id-{audience}",
        destination=destination,
        destination_id=f"id-{destination}",
        started_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc),
        finished_at=datetime(2026, 1, 1, 12, 1, tzinfo=timezone.utc),
        status="ok",
        **counts,
    )


def test_run_is_recorded_with_resources(store):
    store.initialize()
    store.start_run("r1", AS_OF, ["audience.vip", "+trait.ltv"], trigger="daemon")
    [running] = store.runs()
    assert (running.run_id, running.status, running.finished_at) == ("r1", "running", None)

    store.finish_run(
        "r1",
        "failed",
        [
            RunResourceRecord("trait.ltv", "t-1", "ok", duration_s=1.5, size=120),
            RunResourceRecord("audience.vip", "a-1", "failed", duration_s=0.2, error="division by zero"),
        ],
    )

    [run] = store.runs()
    assert (run.status, run.trigger, run.selectors, run.as_of) == ("failed", "daemon", ["audience.vip", "+trait.ltv"], AS_OF)
    assert run.finished_at is not None
    outcomes = store.run_resources("r1")
    assert [(r.address, r.status, r.size, r.error, r.run_id) for r in outcomes] == [
        ("audience.vip", "failed", None, "division by zero", "r1"),
        ("trait.ltv", "ok", 120, None, "r1"),
    ]


def test_last_success_is_latest_ok_outcome(store):
    store.initialize()
    for run_id, day, status in (("r1", 1, "ok"), ("r2", 2, "ok"), ("r3", 3, "failed")):
        as_of = datetime(2024, 3, day, tzinfo=timezone.utc)
        store.start_run(run_id, as_of, [])
        store.finish_run(run_id, "ok", [RunResourceRecord("audience.vip", "a-1", status, size=day * 10)])

    latest = store.last_success("audience.vip")

    assert (latest.run_id, latest.size, latest.as_of) == ("r2", 20, datetime(2024, 3, 2, tzinfo=timezone.utc))
    assert store.last_success("audience.other") is None


def test_finish_of_unknown_run_fails(store):
    store.initialize()

    with pytest.raises(StateError, match="no run r9 was started"):
        store.finish_run("r9", "ok", [])
    with pytest.raises(StateError, match="invalid run status 'done'"):
        store.finish_run("r9", "done", [])


def test_syncs_filter_newest_first(store):
    store.initialize()
    store.record_sync(sync("r1", "audience.vip", "destination.crm", entered=5, members=5, eligible=6))
    store.record_sync(sync("r1", "audience.vip", "destination.redis", entered=5))
    store.record_sync(sync("r2", "audience.vip", "destination.crm", exited=1, held_back=1))

    crm = store.syncs(audience="audience.vip", destination="destination.crm")

    assert [(s.run_id, s.entered, s.exited, s.held_back) for s in crm] == [("r2", 0, 1, 1), ("r1", 5, 0, 0)]
    assert crm[1] == sync("r1", "audience.vip", "destination.crm", entered=5, members=5, eligible=6)
    assert len(store.syncs()) == 3
    assert len(store.syncs(limit=1)) == 1
    assert [s.destination for s in store.syncs(destination="destination.redis")] == ["destination.redis"]


def test_runs_of_missing_store_are_empty(state_url):
    with open_store(state_url) as store:
        assert store.runs() == []
        assert store.syncs() == []
        assert store.run_resources("r1") == []
