"""Every trait type on small event sets, with values worked out by hand, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from reconciler.engine.compiler import build_scan, scan_values
from reconciler.engine.compiler.traits import sql_trait_columns
from tests.engine_compute.conftest import trait

AS_OF = "2024-03-31T00:00:00Z"
ORDER = "Order Completed"


def order(id_, at, profile="p1", **properties):
    return {"id": id_, "at": at, "profile": profile, "event": ORDER, "properties": properties}


def other(id_, at, profile):
    return {"id": id_, "at": at, "profile": profile, "event": "Page Viewed", "properties": {}}


def test_sum_of_text_numbers_is_exact(warehouse):
    warehouse.load([
        order("m1", "2024-03-01", revenue=10),
        order("m2", "2024-03-02", revenue=10),
        order("m3", "2024-03-03", revenue="5.01"),
        order("m4", "2024-03-04", revenue="abc"),
        order("m5", "2024-03-05"),
    ])
    ltv = trait("ltv", type="aggregation", function="sum", property="revenue", event=ORDER)
    assert warehouse.values(ltv, AS_OF) == {"p1": Decimal("25.01")}
    scan = build_scan(warehouse.context(AS_OF, [ltv]), [ltv])
    with warehouse.engine.connect() as connection:
        row = connection.execute(scan.select).one()
    assert row._mapping[scan.invalid_labels["ltv"]] == 1


def test_avg_min_max_skip_missing_and_unparsable_values(warehouse):
    warehouse.load([
        order("m1", "2024-03-01", revenue=10),
        order("m2", "2024-03-02", revenue="5.01"),
        order("m3", "2024-03-03", revenue=2.5),
        order("m4", "2024-03-04", revenue="n/a"),
        order("m5", "2024-03-05", revenue=None),
        order("m6", "2024-03-05", profile="p2", revenue="junk"),
    ])
    spec = dict(type="aggregation", property="revenue", event=ORDER)
    # 17.51 / 3 = 5.83666..., kept to nine decimals.
    assert warehouse.values(trait("a", function="avg", **spec), AS_OF) == {"p1": Decimal("5.836666667")}
    assert warehouse.values(trait("b", function="min", **spec), AS_OF) == {"p1": Decimal("2.5")}
    assert warehouse.values(trait("c", function="max", **spec), AS_OF) == {"p1": Decimal("10")}


def test_avg_is_exact_to_nine_decimals(warehouse):
    # 1234567890.123456789 and 2 average to 617283946.0617283945, whose last half rounds up;
    # a double keeps only about 16 significant digits and could not hold this.
    warehouse.load([
        order("m1", "2024-03-01", revenue="1234567890.123456789"),
        order("m2", "2024-03-02", revenue=2),
    ])
    average = trait("a", type="aggregation", function="avg", property="revenue", event=ORDER)
    assert warehouse.values(average, AS_OF) == {"p1": Decimal("617283946.061728395")}


def test_30_day_window_edges(warehouse):
    warehouse.load([
        order("m1", "2024-03-01T00:00:00Z"),  # as_of - 30d exactly: inside
        order("m2", "2024-02-29T23:59:59Z"),  # one second earlier: outside
        order("m3", "2024-03-31T00:00:00Z"),  # exactly as_of: does not exist yet
        order("m4", "2024-03-30T23:59:59Z"),  # last second before as_of: inside
        other("m5", "2024-01-01", "p2"),
    ])
    counter = trait("orders_30d", type="event_counter", event=ORDER, window="30d")
    assert warehouse.values(counter, AS_OF) == {"p1": 2, "p2": 0}


def test_window_from_to_reads_between_its_two_bounds(warehouse):
    warehouse.load([
        order("m1", "2023-12-02T00:00:00Z"),  # as_of - 120d: inside
        order("m2", "2023-12-01T23:59:59Z"),  # before the window
        order("m3", "2024-02-14T23:59:59Z"),  # last second before as_of - 45d: inside
        order("m4", "2024-02-15T00:00:00Z"),  # as_of - 45d: outside (end is exclusive)
    ])
    counter = trait("mid", type="event_counter", event=ORDER, window={"from": "120d", "to": "45d"})
    assert warehouse.values(counter, AS_OF) == {"p1": 2}


def test_message_at_as_of_is_no_candidate(warehouse):
    warehouse.load([order("m1", "2024-03-01"), other("m2", "2024-03-31T00:00:00Z", "p2")])
    assert warehouse.values(trait("n", type="event_counter", event=ORDER), AS_OF) == {"p1": 1}


def test_where_filters_are_anded(warehouse):
    warehouse.load([
        order("m1", "2024-03-01", revenue=10, currency="EUR"),
        order("m2", "2024-03-02", revenue=50, currency="EUR"),
        order("m3", "2024-03-03", revenue=50, currency="USD"),
    ])
    counter = trait(
        "n", type="event_counter", event=ORDER,
        where=[{"property": "revenue", "gt": 20}, {"property": "currency", "equals": "EUR"}],
    )
    assert warehouse.values(counter, AS_OF) == {"p1": 1}


def test_most_frequent_ties_and_minimum(warehouse):
    warehouse.load([
        order("m1", "2024-03-01", category="rock"),
        order("m2", "2024-03-02", category="jazz"),
        order("m3", "2024-03-03", category="rock"),
        order("m4", "2024-03-04", category="jazz"),
        order("m5", "2024-03-05", category="pop"),
        order("m6", "2024-03-01", profile="p2", category="rock"),
        order("m7", "2024-03-02", profile="p2", category="jazz"),
    ])
    favourite = trait("fav", type="most_frequent", event=ORDER, property="category")
    # p1: jazz 2, rock 2 -> jazz (alphabetical); p2: each once, below min_frequency 2.
    assert warehouse.values(favourite, AS_OF) == {"p1": "jazz"}
    once = trait("fav1", type="most_frequent", event=ORDER, property="category", min_frequency=1)
    assert warehouse.values(once, AS_OF) == {"p1": "jazz", "p2": "jazz"}


def test_first_last_ties_follow_message_id(warehouse):
    warehouse.load([
        order("m2", "2024-03-01T10:00:00Z", sku="B"),
        order("m1", "2024-03-01T10:00:00Z", sku="A"),
        order("m0", "2024-02-01T10:00:00Z"),  # earliest, but without the property
        order("m3", "2024-03-01T10:00:00Z", profile="p2", sku="C"),
    ])
    first = trait("first_sku", type="first", event=ORDER, property="sku")
    last = trait("last_sku", type="last", event=ORDER, property="sku")
    assert warehouse.values(first, AS_OF) == {"p1": "A", "p2": "C"}
    assert warehouse.values(last, AS_OF) == {"p1": "B", "p2": "C"}


def test_first_and_last_without_property_are_event_timestamps(warehouse):
    warehouse.load([
        order("m1", "2024-01-05T08:00:00Z"),
        order("m2", "2024-03-30T08:00:00Z"),
        order("m3", "2024-03-31T00:00:00Z"),  # at as_of: ignored
    ])
    assert warehouse.values(trait("f", type="first", event=ORDER), AS_OF) == {"p1": datetime(2024, 1, 5, 8)}
    assert warehouse.values(trait("l", type="last", event=ORDER), AS_OF) == {"p1": datetime(2024, 3, 30, 8)}


def test_first_with_number_value_type_converts_text(warehouse):
    warehouse.load([order("m1", "2024-03-01", revenue="12.50"), order("m2", "2024-03-02", revenue=3)])
    first = trait("f", type="first", event=ORDER, property="revenue", value_type="number")
    assert warehouse.values(first, AS_OF) == {"p1": Decimal("12.5")}


def test_unique_list_sorted_and_distinct(warehouse):
    warehouse.load([
        order("m1", "2024-03-01", sku="b"),
        order("m2", "2024-03-02", sku="a"),
        order("m3", "2024-03-03", sku="b"),
        order("m4", "2024-03-04"),
        other("m5", "2024-03-04", "p2"),
    ])
    skus = trait("skus", type="unique_list", event=ORDER, property="sku")
    count = trait("sku_count", type="unique_count", event=ORDER, property="sku")
    assert warehouse.values(skus, AS_OF) == {"p1": ["a", "b"], "p2": []}
    assert warehouse.values(count, AS_OF) == {"p1": 2, "p2": 0}


def test_identify_latest_value_and_null(warehouse):
    warehouse.load([
        {"id": "i1", "at": "2024-01-01", "profile": "p1", "traits": {"plan": "pro"}},
        {"id": "i2", "at": "2024-02-01", "profile": "p1", "traits": {"plan": None}},
        {"id": "i3", "at": "2024-01-01", "profile": "p2", "traits": {"plan": "basic"}},
        {"id": "i4", "at": "2024-02-01", "profile": "p2", "traits": {"name": "Ann"}},  # no plan key: keeps basic
        {"id": "i6", "at": "2024-02-01", "profile": "p3", "traits": {"plan": "b"}},
        {"id": "i5", "at": "2024-02-01", "profile": "p3", "traits": {"plan": "a"}},  # same time: i6 is later
        {"id": "i7", "at": "2024-03-31T00:00:00Z", "profile": "p2", "traits": {"plan": "late"}},  # at as_of
    ])
    plan = trait("plan", type="identify", trait="plan", value_type="string")
    assert warehouse.values(plan, AS_OF) == {"p2": "basic", "p3": "b"}


def test_identify_reads_nested_keys_and_converts_value_types(warehouse):
    warehouse.load([
        {"id": "i1", "at": "2024-01-01", "profile": "p1", "traits": {"billing": {"seats": "12"}, "vip": True}},
        {"id": "i2", "at": "2024-01-01", "profile": "p2", "traits": {"billing": {"seats": 3}, "vip": False}},
    ])
    seats = trait("seats", type="identify", trait="billing.seats", value_type="number")
    vip = trait("vip", type="identify", trait="vip", value_type="boolean")
    assert warehouse.values(seats, AS_OF) == {"p1": Decimal("12"), "p2": Decimal("3")}
    assert warehouse.values(vip, AS_OF) == {"p1": True, "p2": False}


def test_account_identify_reads_group_traits(warehouse):
    warehouse.load([
        {"id": "g1", "type": "group", "at": "2024-01-01", "profile": "p1", "group": "acme", "traits": {"plan": "pro"}},
        {"id": "g2", "type": "group", "at": "2024-02-01", "profile": "p2", "group": "acme", "traits": {"plan": "team"}},
        {"id": "i1", "at": "2024-03-01", "profile": "p1", "traits": {"plan": "personal"}},
    ])
    plan = trait("account_plan", type="identify", entity="account", trait="plan", value_type="string")
    assert warehouse.values(plan, AS_OF) == {"acme": "team"}


def test_account_event_counter_counts_events_of_its_users(warehouse):
    warehouse.load([
        {"id": "g1", "type": "group", "at": "2024-01-01", "profile": "p1", "group": "acme"},
        {"id": "g2", "type": "group", "at": "2024-01-01", "profile": "p2", "group": "initech"},
        {"id": "g3", "type": "group", "at": "2024-01-01", "profile": "p3", "group": "acme"},
        {"id": "g4", "type": "group", "at": "2024-01-01", "profile": "p3", "group": "initech"},
        {"id": "g5", "type": "group", "at": "2024-01-01", "profile": "p4", "group": "globex"},
        {"id": "m1", "at": "2024-03-01", "profile": "p1", "event": ORDER},
        {"id": "m2", "at": "2024-03-02", "profile": "p1", "event": ORDER},
        {"id": "m3", "at": "2024-03-02", "profile": "p2", "event": ORDER},
        {"id": "m4", "at": "2024-03-03", "profile": "p3", "event": ORDER},
        {"id": "m5", "at": "2024-03-03", "profile": "p4", "event": "Other"},
    ])
    counter = trait("orders", type="event_counter", entity="account", event=ORDER)

    # acme: p1's two orders and p3's one; initech: p2's and p3's (p3 is in both); globex: none.
    assert warehouse.values(counter, AS_OF) == {"acme": 3, "initech": 2, "globex": 0}


def test_sql_trait_maps_identifiers(warehouse):
    warehouse.load([other("m1", "2024-01-01", "p1"), other("m2", "2024-01-01", "p2")], identifiers=[
        ("p1", "user_id", "u1"), ("p2", "user_id", "u2"), ("p2", "email", "x@example.com"),
    ])
    with warehouse.engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE crm_scores (uid TEXT, score INTEGER, scored_at TIMESTAMP)"))
        connection.execute(sa.text(
            "INSERT INTO crm_scores VALUES ('u1', 7, '2024-03-01'), ('u2', 9, '2024-04-01'), ('u9', 1, '2024-01-01')"
        ))
    score = trait(
        "score", type="sql", identifier="user_id", value_type="number",
        query="SELECT uid, score FROM crm_scores WHERE scored_at < :as_of",
    )
    ctx = warehouse.context(AS_OF, [score])
    with warehouse.engine.connect() as connection:
        ctx.sql_columns["score"] = sql_trait_columns(connection, score, ctx.as_of)
        from reconciler.engine.compiler import trait_values_select

        rows = connection.execute(trait_values_select(ctx, score)).all()
    assert ctx.sql_columns["score"] == ("uid", "score")
    assert {row.subject_id: row.value for row in rows} == {"p1": Decimal("7")}


def test_traits_on_the_same_events_share_one_scan(warehouse):
    warehouse.load([
        order("m1", "2024-03-20", revenue=10, sku="a"),
        order("m2", "2024-01-02", revenue=5, sku="b"),
        other("m3", "2024-01-01", "p2"),
    ])
    traits = [
        trait("n_all", type="event_counter", event=ORDER),
        trait("n_30", type="event_counter", event=ORDER, window="30d"),
        trait("ltv", type="aggregation", function="sum", property="revenue", event=ORDER),
        trait("skus_30", type="unique_list", property="sku", event=ORDER, window="30d"),
    ]
    ctx = warehouse.context(AS_OF, traits)
    scan = build_scan(ctx, traits)
    compiled = str(scan.select.compile(warehouse.engine))
    assert compiled.count("FROM t_events") == 1
    assert "JOIN" not in compiled
    relation = scan.select.subquery()
    expected = {"n_all": {"p1": 2, "p2": 0}, "n_30": {"p1": 1, "p2": 0},
                "ltv": {"p1": Decimal("15")}, "skus_30": {"p1": ["a"], "p2": []}}
    with warehouse.engine.connect() as connection:
        for item in traits:
            rows = connection.execute(scan_values(ctx, scan, relation, item)).all()
            values = {row.subject_id: row.value for row in rows}
            values = {k: (v if not isinstance(v, str) else __import__("json").loads(v)) for k, v in values.items()}
            assert values == expected[item.name], item.name


def test_sql_trait_three_columns_rejected(warehouse):
    import pytest

    score = trait("score", type="sql", identifier="user_id", value_type="number", query="SELECT 'u1' AS a, 1 AS b, 2 AS c")
    with warehouse.engine.connect() as connection:
        with pytest.raises(ValueError, match="the query of trait.score returns 3 columns"):
            sql_trait_columns(connection, score, None)
