"""Selectors pick traits and audiences as dbt picks models."""

from __future__ import annotations

import pytest

from reconciler.engine.selectors import dependency_order, select
from reconciler.errors import UsageError
from tests.engine_compute.conftest import resource

RESOURCES = {
    r.address: r
    for r in [
        resource("Trait", "ltv", type="aggregation", function="sum", property="revenue", event="Order Completed"),
        resource("Trait", "orders", type="event_counter", event="Order Completed"),
        resource("Trait", "plan", type="identify", trait="plan", value_type="string"),
        resource("Audience", "buyers", include={"trait": "orders", "gte": 1}),
        resource("Audience", "winback", include={"all": [{"audience": "buyers"}, {"not": {"trait": "ltv", "gt": 9}}]}),
        resource("Audience", "whales", include={"trait": "ltv", "gt": 1000}),
        resource("Destination", "crm", type="file", path="exports"),
    ]
}
RESOURCES["audience.whales"] = resource(
    "Audience", "whales", include={"trait": "ltv", "gt": 1000}
).model_copy(update={"metadata": RESOURCES["audience.whales"].metadata.model_copy(update={"labels": {"tier": "core"}})})


def test_no_selector_selects_everything():
    assert select(RESOURCES, []) == [
        "trait.ltv", "trait.orders", "trait.plan", "audience.buyers", "audience.whales", "audience.winback",
    ]


def test_address_glob_and_bare_name_select_without_upstream():
    assert select(RESOURCES, ["audience.winback"]) == ["audience.winback"]
    assert select(RESOURCES, ["audience.w*"]) == ["audience.whales", "audience.winback"]
    assert select(RESOURCES, ["orders"]) == ["trait.orders"]


def test_plus_prefix_adds_everything_upstream_in_order():
    assert select(RESOURCES, ["+audience.winback"]) == [
        "trait.ltv", "trait.orders", "audience.buyers", "audience.winback",
    ]


def test_plus_suffix_adds_everything_downstream():
    assert select(RESOURCES, ["trait.orders+"]) == ["trait.orders", "audience.buyers", "audience.winback"]


def test_label_selector_and_union_of_several():
    assert select(RESOURCES, ["label:tier=core"]) == ["audience.whales"]
    assert select(RESOURCES, ["label:tier=core", "trait.plan"]) == ["trait.plan", "audience.whales"]
    assert select(RESOURCES, ["label:tier"]) == ["audience.whales"]


def test_unmatched_selector_fails():
    with pytest.raises(UsageError, match="audience.nope"):
        select(RESOURCES, ["audience.nope"])
    with pytest.raises(UsageError, match="destination.crm"):
        select(RESOURCES, ["destination.crm"])


def test_dependency_order_puts_upstream_first():
    assert dependency_order(RESOURCES, ["audience.winback", "audience.buyers"]) == ["audience.buyers", "audience.winback"]
