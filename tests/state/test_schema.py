"""Schema versions: creating, checking and upgrading the state store's schema."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from reconciler.errors import StateSchemaError
from reconciler.state import open_store
from reconciler.state import tables as state_tables
from reconciler.state.schema import HEAD_VERSION

from .helpers import V1_TABLES, V2_TABLES, apply, audit, build_version_1_store, change, dump_tables, engine_for


def set_version(url: str, revision: str) -> None:
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})
    engine.dispose()


def test_initialize_creates_head_schema(store):
    store.initialize()

    assert store.schema_version() == HEAD_VERSION
    store.check_schema()
    snapshot = store.read()
    assert (snapshot.serial, snapshot.resources) == (0, {})
    uuid.UUID(snapshot.lineage)


def test_initialize_twice_keeps_lineage(store):
    store.initialize()
    lineage = store.read().lineage

    store.initialize()

    assert store.read().lineage == lineage


def test_concurrent_initialize_makes_one_lineage(state_url):
    stores = [open_store(state_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda store: store.initialize(), stores))
        lineages = {store.read().lineage for store in stores}
    finally:
        for store in stores:
            store.close()

    assert len(lineages) == 1
    assert dump_tables(state_url, ["meta"])["meta"][0][0] == 1


def test_migrations_match_table_definitions(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store.initialize()

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), state_tables.metadata)

    assert differences == []


def test_version_1_store_is_rejected_until_upgraded(state_url):
    build_version_1_store(state_url)
    store = open_store(state_url)

    with pytest.raises(StateSchemaError) as caught:
        store.check_schema()

    assert caught.value.message == (
        f"the state store at {store.where} has schema version 1; this personas needs {HEAD_VERSION}"
    )
    assert "`personas state upgrade`" in caught.value.hint
    with pytest.raises(StateSchemaError):
        store.apply(2, store.read().lineage, [change("create", "audience.new")], audit())
    store.close()


def test_upgrade_from_version_1_keeps_every_row(state_url):
    build_version_1_store(state_url)
    before = dump_tables(state_url, V1_TABLES)
    assert len(before["resources"]) == 1
    assert len(before["resource_versions"]) == 4
    assert len(before["tombstones"]) == 1
    assert len(before["audit_log"]) == 2
    assert len(before["locks"]) == 1

    with open_store(state_url) as store:
        assert store.upgrade() == (1, HEAD_VERSION)
        store.check_schema()
        assert store.upgrade() == (HEAD_VERSION, HEAD_VERSION)

    assert dump_tables(state_url, V1_TABLES) == before
    assert dump_tables(state_url, V2_TABLES) == {"runs": [], "run_resources": [], "sync_records": []}


def test_upgraded_store_takes_new_applies(state_url):
    build_version_1_store(state_url)
    with open_store(state_url) as store:
        store.upgrade()
        vip_id = store.read().resources["audience.vip"].id

        assert apply(store, change("update", "audience.vip", size=3)) == 3

        assert store.read().resources["audience.vip"].id == vip_id
        assert [v.version for v in store.history("audience.vip")] == [1, 2, 3]


def test_newer_schema_is_rejected(store):
    store.initialize()
    set_version(store_url(store), "0003")

    with pytest.raises(StateSchemaError) as caught:
        store.check_schema()

    assert caught.value.message == (
        f"the state store at {store.where} has schema version 3, newer than this personas supports ({HEAD_VERSION})"
    )
    assert caught.value.hint == "Upgrade personas to the version that last wrote this state."
    with pytest.raises(StateSchemaError, match="newer"):
        store.upgrade()
    with pytest.raises(StateSchemaError, match="newer"):
        store.apply(0, None, [change("create", "audience.vip")], audit())


def test_unknown_revision_reads_as_newer(store):
    store.initialize()
    set_version(store_url(store), "a1b2c3d4e5f6")

    with pytest.raises(StateSchemaError, match="newer than this personas supports"):
        store.check_schema()


def test_upgrade_of_missing_store_does_nothing(store):
    assert store.upgrade() == (0, 0)
    assert not store.exists()


def store_url(store) -> str:
    return store.url.render_as_string(hide_password=False)
