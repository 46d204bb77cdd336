"""Applying changes: ids, versions, history, tombstones, the serial guard and atomicity."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy

from reconciler.errors import StalePlanError, StateError

from .helpers import apply, audit, change


def test_apply_to_new_store_creates_it(store):
    assert not store.exists()

    serial = store.apply(0, None, [change("create", "audience.vip", size=1)], audit())

    assert serial == 1
    assert store.exists()
    snapshot = store.read()
    assert snapshot.serial == 1
    assert snapshot.lineage is not None
    assert list(snapshot.resources) == ["audience.vip"]


def test_create_records_every_field(store):
    created = change("create", "trait.ltv", window="365d")
    created = dataclasses.replace(created, protected=True, previous_names=["revenue"], secret_hashes={"spec.x": "ab"})

    apply(store, created)

    record = store.read().resources["trait.ltv"]
    assert record.kind == "Trait"
    assert record.name == "ltv"
    assert record.spec == created.spec
    assert record.spec_hash == created.spec_hash
    assert record.version == 1
    assert record.protected is True
    assert record.previous_names == ["revenue"]
    assert record.source_file == "traits.yaml"
    assert record.secret_hashes == {"spec.x": "ab"}
    assert record.applied_by == "alice"
    assert record.applied_at.tzinfo is not None
    assert len(record.id) == 36


def test_update_keeps_id_and_bumps_version(store):
    apply(store, change("create", "audience.vip", size=1))
    first = store.read().resources["audience.vip"]

    apply(store, change("update", "audience.vip", size=2), user="bob")

    second = store.read().resources["audience.vip"]
    assert second.id == first.id
    assert second.version == 2
    assert second.spec["spec"] == {"size": 2}
    assert second.applied_by == "bob"


def test_move_keeps_id_and_history(store):
    apply(store, change("create", "audience.old_vip", size=1))
    original = store.read().resources["audience.old_vip"]

    apply(store, change("move", "audience.vip", previous_address="audience.old_vip", size=1))

    snapshot = store.read()
    assert list(snapshot.resources) == ["audience.vip"]
    assert snapshot.resources["audience.vip"].id == original.id
    assert snapshot.resources["audience.vip"].version == 2
    history = store.history("audience.vip")
    assert [(v.address, v.action, v.version) for v in history] == [
        ("audience.old_vip", "create", 1),
        ("audience.vip", "move", 2),
    ]
    assert history[1].previous_address == "audience.old_vip"
    assert store.history("audience.old_vip") == history


def test_replace_gives_new_id_linked_to_old(store):
    apply(store, change("create", "trait.score", type="number"))
    old_id = store.read().resources["trait.score"].id

    apply(store, change("replace", "trait.score", type="string"))

    record = store.read().resources["trait.score"]
    assert record.id != old_id
    assert record.version == 2
    history = store.history("trait.score")
    assert [(v.id, v.action, v.version) for v in history] == [(old_id, "create", 1), (record.id, "replace", 2)]
    assert history[1].replaced_id == old_id


def test_delete_audience_leaves_tombstone(store):
    apply(store, change("create", "audience.vip", size=1), change("create", "trait.ltv", window="30d"))
    vip = store.read().resources["audience.vip"]

    serial = apply(store, change("delete", "audience.vip"), change("delete", "trait.ltv"))

    assert store.read().resources == {}
    tombstones = store.tombstones()
    assert [(t.id, t.address, t.kind, t.name, t.deleted_serial) for t in tombstones] == [
        (vip.id, "audience.vip", "Audience", "vip", serial)
    ]
    assert tombstones[0].spec == vip.spec
    assert [(v.action, v.version) for v in store.history("audience.vip")] == [("create", 1), ("delete", 2)]


def test_forget_tombstone_removes_it(store):
    apply(store, change("create", "destination.crm", url="https://crm.example"))
    apply(store, change("delete", "destination.crm"))
    [tombstone] = store.tombstones()

    assert store.forget_tombstone(tombstone.id) is True

    assert store.tombstones() == []
    assert store.forget_tombstone(tombstone.id) is False


def test_recreate_after_delete_gets_new_id(store):
    apply(store, change("create", "audience.vip", size=1))
    old_id = store.read().resources["audience.vip"].id
    apply(store, change("delete", "audience.vip"))

    apply(store, change("create", "audience.vip", size=1))

    assert store.read().resources["audience.vip"].id != old_id
    assert [t.id for t in store.tombstones()] == [old_id]


def test_identity_reads_apart_from_resources(store):
    apply(store, change("create", "project.identity", identifiers=["user_id"]), change("create", "audience.vip"))

    snapshot = store.read()

    assert list(snapshot.resources) == ["audience.vip"]
    assert snapshot.identity is not None
    assert snapshot.identity.kind == "Identity"
    assert snapshot.identity.address == "project.identity"


def test_serial_advances_once_per_apply(store):
    assert apply(store, change("create", "audience.a"), change("create", "audience.b")) == 1
    assert apply(store, change("update", "audience.a", size=3)) == 2
    assert apply(store) == 3
    assert store.read().serial == 3


def test_stale_serial_is_rejected(store):
    apply(store, change("create", "audience.vip", size=1))
    planned = store.read()
    apply(store, change("update", "audience.vip", size=2), user="bob")

    with pytest.raises(StalePlanError) as caught:
        store.apply(planned.serial, planned.lineage, [change("update", "audience.vip", size=3)], audit())

    assert "made at serial 1" in caught.value.message
    assert "now at serial 2" in caught.value.message
    assert "personas plan" in caught.value.hint
    assert store.read().resources["audience.vip"].spec["spec"] == {"size": 2}


def test_plan_against_empty_state_is_stale_once_applied(store):
    apply(store, change("create", "audience.vip", size=1))

    with pytest.raises(StalePlanError, match="made at serial 0"):
        store.apply(0, None, [change("create", "audience.vip", size=9)], audit())


def test_other_lineage_is_rejected(store):
    apply(store, change("create", "audience.vip", size=1))
    lineage = store.read().lineage
    other = "00000000-0000-4000-8000-000000000000"

    with pytest.raises(StalePlanError) as caught:
        store.apply(1, other, [change("update", "audience.vip", size=2)], audit())

    assert other in caught.value.message
    assert lineage in caught.value.message
    assert store.read().serial == 1


def test_failed_change_rolls_back_whole_apply(store):
    apply(store, change("create", "audience.vip", size=1))
    before = store.read()

    with pytest.raises(StateError, match="audience.missing is not in the state"):
        apply(store, change("update", "audience.vip", size=2), change("update", "audience.missing"))

    assert store.read() == before
    assert [v.version for v in store.history("audience.vip")] == [1]
    assert len(store.audit_log()) == 1


def test_unserialisable_spec_rolls_back(store):
    apply(store, change("create", "audience.vip", size=1))
    before = store.read()
    broken = dataclasses.replace(change("create", "audience.new"), spec={"when": object()})

    with pytest.raises((TypeError, sqlalchemy.exc.StatementError), match="not JSON serializable"):
        apply(store, change("create", "audience.other"), broken)

    assert store.read() == before


def test_create_of_existing_address_is_rejected(store):
    apply(store, change("create", "audience.vip", size=1))

    with pytest.raises(StateError, match="already in the state"):
        apply(store, change("create", "audience.vip", size=2))


@pytest.mark.parametrize("action", ["delete", "replace"])
def test_protected_resource_cannot_be_removed(store, action):
    protected = dataclasses.replace(change("create", "audience.vip"), protected=True)
    apply(store, protected)
    before = store.read()

    with pytest.raises(StateError) as caught:
        apply(store, change(action, "audience.vip", entity="account"))

    assert caught.value.message == f"cannot {action} audience.vip: it is protected"
    assert caught.value.hint == "Set `metadata.protected: false` in audiences.yaml and apply that first."
    assert store.read() == before


def test_unprotected_resource_can_then_be_deleted(store):
    apply(store, dataclasses.replace(change("create", "audience.vip"), protected=True))
    apply(store, change("update", "audience.vip"))

    apply(store, change("delete", "audience.vip"))

    assert store.read().resources == {}


def test_audit_log_records_who_and_what(store):
    apply(store, change("create", "audience.a"), change("create", "audience.b"))
    apply(store, change("delete", "audience.a"), user="bob")

    latest, first = store.audit_log()

    assert (first.serial_before, first.serial_after, first.user) == (0, 1, "alice")
    assert first.summary == {"create": 2}
    assert (latest.serial_before, latest.serial_after, latest.user) == (1, 2, "bob")
    assert latest.summary == {"delete": 1}
    assert (latest.host, latest.git_commit, latest.git_branch) == ("ci-runner", "abc123", "main")
    assert latest.plan == {"format_version": 1}
    assert [entry.id for entry in store.audit_log(limit=1)] == [latest.id]


def test_history_without_address_lists_all_versions(store):
    apply(store, change("create", "audience.a"), change("create", "trait.t"))
    apply(store, change("update", "trait.t", window="7d"))

    history = store.history()

    assert [(v.address, v.action, v.serial) for v in history] == [
        ("audience.a", "create", 1),
        ("trait.t", "create", 1),
        ("trait.t", "update", 2),
    ]
