"""Every trait type and condition kind compiles for five dialects, and sqlglot reads the result.

The Trino, Snowflake and Databricks dialect classes are only imported to
compile; nothing connects to those warehouses.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlglot

from reconciler.engine.compiler import Context, audience_select, build_scan, trait_values_select
from tests.engine_compute.conftest import audience, build_tables, naive, trait


def _dialects():
    from databricks.sqlalchemy import DatabricksDialect
    from duckdb_engine import Dialect as DuckDBDialect
    from snowflake.sqlalchemy.snowdialect import SnowflakeDialect
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
    from trino.sqlalchemy.dialect import TrinoDialect

    return {
        "duckdb": (DuckDBDialect(), "duckdb"),
        "postgresql": (PGDialect_psycopg(), "postgres"),
        "trino": (TrinoDialect(), "trino"),
        "snowflake": (SnowflakeDialect(), "snowflake"),
        "databricks": (DatabricksDialect(), "databricks"),
    }


ORDER = "Order Completed"
TRAITS = [
    trait("orders", type="event_counter", event=ORDER, where=[{"property": "revenue", "gt": 0}], window="90d"),
    trait("ltv", type="aggregation", function="sum", property="revenue", event=ORDER),
    trait("aov", type="aggregation", function="avg", property="revenue", event=ORDER, window={"from": "120d", "to": "45d"}),
    trait("fav", type="most_frequent", property="product.category", event=ORDER),
    trait("first_order", type="first", event=ORDER),
    trait("last_sku", type="last", property="sku", event=ORDER, value_type="string"),
    trait("skus", type="unique_list", property="sku", event=ORDER),
    trait("sku_count", type="unique_count", property="sku", event=ORDER),
    trait("plan", type="identify", trait="plan", value_type="string"),
    trait("renewal", type="identify", trait="billing.renewal", value_type="timestamp"),
    trait("vip", type="identify", trait="vip", value_type="boolean"),
    trait("seats", type="identify", entity="account", trait="seats", value_type="number"),
    trait("score", type="sql", identifier="email", value_type="number",
          query="SELECT email, score FROM crm.scores WHERE updated_at < :as_of"),
]
AUDIENCES = [
    audience("winback", holdout="10%", include={"all": [
        {"event": ORDER, "window": {"from": "120d", "to": "45d"}, "count": {"gte": 1}},
        {"not": {"event": ORDER, "window": "45d"}},
        {"event": ORDER, "count": 0, "where": [{"property": "coupon", "starts_with": "X%"}]},
    ]}, exclude={"any": [{"audience": "vips"}]}),
    audience("vips", include={"any": [
        {"trait": "ltv", "gte": 500},
        {"trait": "plan", "in": ["pro", "team"]},
        {"trait": "skus", "contains": "A-1"},
        {"trait": "renewal", "within_next": "30d"},
        {"trait": "vip", "equals": True},
        {"trait": "fav", "missing": True},
        {"event": ORDER, "where": [
            {"property": "revenue", "between": [10, 20]},
            {"property": "shipped_at", "before_last": "7d"},
            {"property": "country", "not_in": ["NO", "SE"]},
            {"property": "name", "contains": "a_b"},
        ]},
    ]}),
    audience("funnel", include={"sequence": [
        {"event": "Product Viewed"}, {"event": "Product Added", "within": "1h"}, {"event": ORDER, "within": "1d"},
    ], "window": "30d"}),
    audience("accounts", entity="account", include={"all": [
        {"any_user": {"event": ORDER}},
        {"all_users": {"trait": "plan", "exists": True}},
        {"no_user": {"audience": "vips"}},
        {"trait": "seats", "gt": 10},
    ]}),
]


def context() -> Context:
    return Context(
        relations=build_tables(sa.MetaData()),
        as_of=naive("2024-03-31T00:00:00Z"),
        traits={t.name: t for t in TRAITS},
        audiences={a.name: a for a in AUDIENCES},
    )


def statements():
    ctx = context()
    for item in TRAITS:
        yield item.address, trait_values_select(ctx, item)
    scan_group = [t for t in TRAITS if t.spec.type in ("event_counter", "aggregation", "unique_list", "unique_count")]
    yield "shared scan", build_scan(ctx, scan_group[:1] + scan_group[1:]).select
    for item in AUDIENCES:
        yield item.address, audience_select(ctx, item)


@pytest.mark.parametrize("dialect_name", ["duckdb", "postgresql", "trino", "snowflake", "databricks"])
def test_statements_parse_in_dialect(dialect_name):
    dialect, read = _dialects()[dialect_name]
    problems = []
    for name, statement in statements():
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        try:
            sqlglot.parse_one(sql, read=read)
        except sqlglot.errors.ParseError as error:
            problems.append(f"{name}: {str(error).splitlines()[0]}")
    assert problems == []


def test_json_paths_are_spelled_per_dialect():
    from reconciler.engine.compiler.functions import JsonText

    column = sa.column("properties")
    expected = {
        "duckdb": "json_extract_string(properties, '$.product.\"sku code\"')",
        "postgresql": "(properties #>> '{\"product\",\"sku code\"}')",
        "snowflake": "TO_VARCHAR(GET_PATH(properties, 'product.\"sku code\"'))",
        "databricks": "get_json_object(properties, '$[\"product\"][\"sku code\"]')",
    }
    for name, text in expected.items():
        dialect = _dialects()[name][0]
        assert str(JsonText(column, ("product", "sku code")).compile(dialect=dialect)) == text
    trino = str(JsonText(column, ("product", "sku code")).compile(dialect=_dialects()["trino"][0]))
    assert trino.startswith("COALESCE(json_extract_scalar(properties, '$[\"product\"][\"sku code\"]')")
