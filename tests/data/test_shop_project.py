"""The shop example project loads cleanly and reads the converted data as documented."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

from reconciler.project import load_project
from .helpers import REPOSITORY

SHOP = REPOSITORY / "specs" / "shop"


def test_shop_project_loads_without_warnings():
    project = load_project(SHOP, env={})
    assert project.warnings == []
    assert len(project.traits) == 17
    assert len(project.audiences) == 8
    assert list(project.destinations) == ["exports"]


def test_shop_project_settings():
    settings = load_project(SHOP, env={}).settings
    assert settings.name == "shop"
    as_of = settings.as_of if settings.as_of.tzinfo else settings.as_of.replace(tzinfo=timezone.utc)  # naive means UTC
    assert as_of == datetime(2024, 7, 1, tzinfo=timezone.utc)
    assert [rule.type for rule in settings.identity.identifiers] == ["user_id"]
    assert settings.warehouse == "${PERSONAS_WAREHOUSE_URL:-duckdb:///.personas/warehouse.duckdb}"
    assert settings.state == "${PERSONAS_STATE_URL:-sqlite:///.personas/state.db}"


def test_shop_cart_abandoners_is_a_sequence_with_holdout():
    audience = load_project(SHOP, env={}).audiences["cart_abandoners"]
    sequence, no_order = audience.spec.include.all
    assert [step.event for step in sequence.sequence] == ["Product Viewed", "Product Added"]
    assert sequence.sequence[1].within == "1h"
    assert no_order.event == "Order Completed"
    assert no_order.count.equals == 0
    assert audience.spec.holdout == "10%"


def test_shop_event_names_used_exist_in_data():
    with gzip.open(SHOP / "data" / "shop_events.jsonl.gz", "rt", encoding="utf-8") as lines:
        names = {message.get("event") or "Page Viewed" for message in map(json.loads, lines) if message["type"] != "identify"}
    project = load_project(SHOP, env={})
    used = {trait.spec.event for trait in project.traits.values() if hasattr(trait.spec, "event")}
    assert used <= names
