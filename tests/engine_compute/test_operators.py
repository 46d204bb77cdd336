"""Every operator, on event properties (untyped JSON) and on typed trait values."""

from __future__ import annotations

import pytest

from tests.engine_compute.conftest import audience, trait

AS_OF = "2024-03-31T00:00:00Z"
ORDER = "Order Completed"

# One order per message; the property values each operator is tested against.
ORDERS = [
    ("m1", {"revenue": 5, "coupon": "SPRING24", "shipped_at": "2024-03-29T00:00:00Z"}),
    ("m2", {"revenue": "12", "coupon": "summer", "shipped_at": "2024-02-01T00:00:00+02:00"}),
    ("m3", {"revenue": "abc", "coupon": "SPRING_50%"}),
    ("m4", {}),
    ("m5", {"revenue": 20.5, "shipped_at": "2024-04-03T00:00:00Z"}),
    ("m6", {"revenue": None, "shipped_at": "2024-05-01"}),
]


@pytest.fixture
def orders(warehouse):
    warehouse.load([
        {"id": id_, "at": "2024-03-01", "profile": "p1", "event": ORDER, "properties": props} for id_, props in ORDERS
    ])
    return warehouse


PROPERTY_CASES = [
    ({"property": "revenue", "equals": 12}, 1),  # "12" compares as a number
    ({"property": "revenue", "not_equals": 12}, 2),  # 5 and 20.5: "abc", absent and null are missing
    ({"property": "revenue", "gt": 10}, 2),
    ({"property": "revenue", "gte": 12}, 2),
    ({"property": "revenue", "lt": 12}, 1),
    ({"property": "revenue", "lte": 12}, 2),
    ({"property": "revenue", "in": [5, 20.5]}, 2),
    ({"property": "revenue", "not_in": [5]}, 2),
    ({"property": "revenue", "between": [5, 12]}, 2),
    ({"property": "coupon", "equals": "summer"}, 1),
    ({"property": "coupon", "not_equals": "summer"}, 2),
    ({"property": "coupon", "in": ["summer", "winter"]}, 1),
    ({"property": "coupon", "contains": "PRING"}, 2),
    ({"property": "coupon", "contains": "_50%"}, 1),  # LIKE wildcards are matched literally
    ({"property": "coupon", "starts_with": "SPRING"}, 2),
    ({"property": "coupon", "ends_with": "24"}, 1),
    ({"property": "coupon", "gt": "m"}, 1),  # text order: only "summer"
    ({"property": "revenue", "exists": True}, 4),
    ({"property": "revenue", "missing": True}, 2),
    ({"property": "shipped_at", "within_last": "7d"}, 1),  # [2024-03-24, 2024-03-31]
    ({"property": "shipped_at", "before_last": "30d"}, 1),  # 2024-01-31T22:00Z
    ({"property": "shipped_at", "within_next": "7d"}, 1),  # 2024-04-03
    ({"property": "shipped_at", "after_next": "7d"}, 1),  # 2024-05-01
    ({"property": "shipped_at", "gt": "2024-03-01"}, 3),  # compared as timestamps
    ({"property": "shipped_at", "between": ["2024-01-31T22:00:00Z", "2024-03-29"]}, 2),
]


def test_every_property_operator_counts_the_matching_events(orders):
    # One warehouse for all cases keeps the test fast; every mismatch is listed.
    wrong = []
    for where, expected in PROPERTY_CASES:
        counter = trait("n", type="event_counter", event=ORDER, where=[where])
        got = orders.values(counter, AS_OF)
        if got != {"p1": expected}:
            wrong.append((where, expected, got))
    assert wrong == []


def test_nested_property_paths_read_nested_keys(warehouse):
    warehouse.load([
        {"id": "m1", "at": "2024-03-01", "profile": "p1", "event": ORDER, "properties": {"product": {"sku": "A-1"}}},
        {"id": "m2", "at": "2024-03-01", "profile": "p1", "event": ORDER, "properties": {"product": {"sku": "B-2"}}},
    ])
    counter = trait("n", type="event_counter", event=ORDER, where=[{"property": "product.sku", "equals": "A-1"}])
    assert warehouse.values(counter, AS_OF) == {"p1": 1}


PROFILES = [
    # profile, plan, seats, renewal (timestamp), vip (boolean), tags (list)
    ("p1", "pro", 10, "2024-04-05T00:00:00Z", True, ["beta", "eu"]),
    ("p2", "basic", 2, "2024-01-01T00:00:00Z", False, ["us"]),
    ("p3", None, None, None, None, None),  # identifies without these traits: all missing
]


@pytest.fixture
def profiles(warehouse):
    events = []
    for index, (profile, plan, seats, renewal, vip, tags) in enumerate(PROFILES):
        values = {"plan": plan, "seats": seats, "renewal": renewal, "vip": vip, "tags": tags}
        traits = {key: value for key, value in values.items() if value is not None}
        events.append({"id": f"i{index}", "at": "2024-03-01", "profile": profile, "traits": traits or {"name": "x"}})
    warehouse.load(events)
    return warehouse


TRAITS = [
    trait("plan", type="identify", trait="plan", value_type="string"),
    trait("seats", type="identify", trait="seats", value_type="number"),
    trait("renewal", type="identify", trait="renewal", value_type="timestamp"),
    trait("vip", type="identify", trait="vip", value_type="boolean"),
    trait("tags", type="identify", trait="tags", value_type="list"),
]


TRAIT_CASES = [
    ({"trait": "plan", "equals": "pro"}, {"p1"}),
    ({"trait": "plan", "not_equals": "pro"}, {"p2"}),
    ({"not": {"trait": "plan", "equals": "pro"}}, {"p2", "p3"}),
    ({"not": {"trait": "plan", "not_equals": "pro"}}, {"p1", "p3"}),
    ({"trait": "plan", "in": ["pro", "team"]}, {"p1"}),
    ({"trait": "plan", "not_in": ["pro"]}, {"p2"}),
    ({"trait": "plan", "contains": "as"}, {"p2"}),
    ({"trait": "plan", "starts_with": "pr"}, {"p1"}),
    ({"trait": "plan", "ends_with": "ic"}, {"p2"}),
    ({"trait": "plan", "exists": True}, {"p1", "p2"}),
    ({"trait": "plan", "missing": True}, {"p3"}),
    ({"trait": "plan", "gt": "c"}, {"p1"}),
    ({"trait": "plan", "between": ["a", "c"]}, {"p2"}),
    ({"trait": "seats", "equals": 10}, {"p1"}),
    ({"trait": "seats", "not_equals": 10}, {"p2"}),
    ({"trait": "seats", "gt": 2}, {"p1"}),
    ({"trait": "seats", "gte": 2}, {"p1", "p2"}),
    ({"trait": "seats", "lt": 10}, {"p2"}),
    ({"trait": "seats", "lte": 10}, {"p1", "p2"}),
    ({"trait": "seats", "in": [2, 3]}, {"p2"}),
    ({"trait": "seats", "not_in": [2]}, {"p1"}),
    ({"trait": "seats", "between": [2, 9]}, {"p2"}),
    ({"trait": "seats", "missing": True}, {"p3"}),
    ({"trait": "renewal", "within_next": "5d"}, {"p1"}),  # 2024-04-05 is as_of + 5d: included
    ({"trait": "renewal", "within_next": "4d"}, set()),
    ({"trait": "renewal", "after_next": "4d"}, {"p1"}),
    ({"trait": "renewal", "before_last": "30d"}, {"p2"}),
    ({"trait": "renewal", "within_last": "90d"}, {"p2"}),  # 2024-01-01 is as_of - 90d: included
    ({"trait": "renewal", "gt": "2024-02-01"}, {"p1"}),
    ({"trait": "renewal", "lte": "2024-01-01T00:00:00Z"}, {"p2"}),
    ({"trait": "renewal", "equals": "2024-01-01"}, {"p2"}),
    ({"trait": "renewal", "between": ["2023-12-31", "2024-04-05T00:00:00Z"]}, {"p1", "p2"}),
    ({"trait": "vip", "equals": True}, {"p1"}),
    ({"trait": "vip", "not_equals": True}, {"p2"}),
    ({"not": {"trait": "vip", "equals": True}}, {"p2", "p3"}),
    ({"trait": "tags", "contains": "eu"}, {"p1"}),
    ({"trait": "tags", "exists": True}, {"p1", "p2"}),
    ({"trait": "tags", "missing": True}, {"p3"}),
]


def test_every_trait_operator_selects_the_matching_profiles(profiles):
    wrong = []
    for condition, expected in TRAIT_CASES:
        got = profiles.members(audience("a", include=condition), AS_OF, TRAITS)
        if got != expected:
            wrong.append((condition, expected, got))
    assert wrong == []


def test_timestamp_text_ignores_session_zone(warehouse):
    from datetime import datetime

    import sqlalchemy as sa

    from reconciler.engine.compiler.functions import SafeCast

    cases = {
        "2024-05-01": datetime(2024, 5, 1),
        "2024-05-01T10:30:00": datetime(2024, 5, 1, 10, 30),
        "2024-05-01T10:30:00Z": datetime(2024, 5, 1, 10, 30),
        "2024-05-01T10:30:00+02:00": datetime(2024, 5, 1, 8, 30),
        "2024-05-01 10:30:00-05": datetime(2024, 5, 1, 15, 30),
        "not a time": None,
    }
    zone = "SET TimeZone = 'America/New_York'" if warehouse.dialect == "duckdb" else "SET TIME ZONE 'America/New_York'"
    with warehouse.engine.connect() as connection:
        connection.execute(sa.text(zone))
        got = {text: connection.execute(sa.select(SafeCast(sa.literal(text), "timestamp"))).scalar_one() for text in cases}
    assert got == cases
