"""Secret digests: keyed per store, stable, and the only trace of a secret in the state."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.state import open_store

from .helpers import V1_TABLES, V2_TABLES, apply, change, dump_tables

SECRET = "Bearer tok_live_FAKE123"


def test_digest_is_stable_for_one_store(state_url):
    with open_store(state_url) as store:
        store.initialize()
        digest = store.secret_digest(SECRET)
        assert store.secret_digest(SECRET) == digest

    with open_store(state_url) as reopened:
        assert reopened.secret_digest(SECRET) == digest
        assert reopened.secret_digest(SECRET + "2") != digest

    assert len(digest) == 64
    assert digest != hashlib.sha256(SECRET.encode()).hexdigest()


def test_digest_differs_between_stores(state_url, tmp_path):
    with open_store(state_url) as first, open_store(f"sqlite:///{tmp_path}/other.db") as second:
        first.initialize()
        second.initialize()

        assert first.secret_digest(SECRET) != second.secret_digest(SECRET)


def test_digest_needs_initialised_store(state_url):
    with open_store(state_url) as store:
        with pytest.raises(StateError, match="has no key for secret digests"):
            store.secret_digest(SECRET)


def test_state_never_holds_secret_value(state_url):
    with open_store(state_url) as store:
        store.initialize()
        digest = store.secret_digest(SECRET)
        webhook = change("create", "destination.crm", headers={"Authorization": "Bearer ${CRM_TOKEN}"})
        apply(store, dataclasses.replace(webhook, secret_hashes={"spec.headers.Authorization": digest}))

        assert store.read().resources["destination.crm"].secret_hashes == {"spec.headers.Authorization": digest}

    assert "tok_live_FAKE123" not in repr(dump_tables(state_url, V1_TABLES + V2_TABLES))
    if state_url.startswith("sqlite:///"):
        assert b"tok_live_FAKE123" not in Path(state_url.removeprefix("sqlite:///")).read_bytes()
