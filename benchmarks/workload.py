"""The benchmark workload: 20 traits and 20 audiences, as personas specs and as hand-written SQL.

Both sides read the same events (personas_events) and the same identity
resolution (personas_message_profiles). They share the candidates: canonical
profiles first seen before as_of, or accounts with a group call before
as_of. They use the same windows, relative to the same as_of. The specs
cover every trait type and condition kind. The SQL is what an analyst would
write by hand in DuckDB for the same semantics:

* windows are [as_of - duration, as_of), `within_last` is [as_of - d, as_of]
  and `before_last` is before as_of - d;
* event counts and unique counts are 0, and unique lists are empty, for a
  candidate without matching events, and every other trait is then missing;
* revenue sent as a string is cast, and a value that does not parse is skipped;
* `first`/`last` and sequences order events by (timestamp, messageId);
* most_frequent needs a value seen at least `min_frequency` times, and ties go
  to the alphabetically first value;
* an identify trait is the latest value sent, and an explicit null clears it;
* `not` is the complement within the candidates, and holdout members count
  as members.

Each hand-written statement creates one table in the schema `hand` of the
warehouse, so the benchmark can compare it with personas' results row by row.
"""

from __future__ import annotations

AS_OF = "2024-07-01T00:00:00Z"
AS_OF_SQL = "TIMESTAMP '2024-07-01 00:00:00'"

PROJECT_YAML = """\
version: 1
name: engine-benchmark
as_of: 2024-07-01
runtime:
  duckdb: {{memory_limit: {memory_limit}, threads: {threads}}}
"""

TRAITS_YAML = """\
apiVersion: personas/v1
kind: Trait
metadata: {name: orders_90d}
spec: {type: event_counter, event: Order Completed, window: 90d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: product_views_30d}
spec: {type: event_counter, event: Product Viewed, window: 30d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: cart_adds_7d}
spec: {type: event_counter, event: Product Added, window: 7d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: page_views_30d}
spec: {type: event_counter, event: Page Viewed, window: 30d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: expensive_views_30d}
spec:
  type: event_counter
  event: Product Viewed
  where: [{property: price, gte: 100}]
  window: 30d
---
apiVersion: personas/v1
kind: Trait
metadata: {name: revenue_180d}
spec: {type: aggregation, function: sum, property: revenue, event: Order Completed, window: 180d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: avg_order_value}
spec: {type: aggregation, function: avg, property: revenue, event: Order Completed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: max_order_value}
spec: {type: aggregation, function: max, property: revenue, event: Order Completed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: min_price_viewed_30d}
spec: {type: aggregation, function: min, property: price, event: Product Viewed, window: 30d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: favorite_category}
spec: {type: most_frequent, property: category, event: Product Viewed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: favorite_page}
spec: {type: most_frequent, property: name, event: Page Viewed, min_frequency: 3}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: first_seen}
spec: {type: first, event: Page Viewed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: last_seen}
spec: {type: last, event: Page Viewed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: last_order_at}
spec: {type: last, event: Order Completed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: first_category}
spec: {type: first, property: category, event: Product Viewed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: categories_viewed_90d}
spec: {type: unique_list, property: category, event: Product Viewed, window: 90d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: products_viewed_30d}
spec: {type: unique_count, property: product_id, event: Product Viewed, window: 30d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: email_opt_in}
spec: {type: identify, trait: marketing_email, value_type: boolean}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: sms_opt_in}
spec: {type: identify, trait: marketing_sms, value_type: boolean}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: accounts_joined}
spec:
  type: sql
  identifier: user_id
  value_type: number
  query: >-
    SELECT user_id, COUNT(DISTINCT group_id) FROM personas_events
    WHERE type = 'group' AND timestamp < :as_of GROUP BY user_id
"""

AUDIENCES_YAML = """\
apiVersion: personas/v1
kind: Audience
metadata: {name: recent_buyers}
spec:
  include: {event: Order Completed, window: 30d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: repeat_buyers}
spec:
  include: {event: Order Completed, window: 90d, count: {gte: 2}}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: winback}
spec:
  include:
    all:
      - {event: Order Completed, window: {from: 120d, to: 45d}}
      - not: {event: Order Completed, window: 45d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: never_bought}
spec:
  include: {event: Order Completed, count: 0}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: cart_abandoners}
spec:
  include:
    all:
      - sequence:
          - {event: Product Viewed}
          - {event: Product Added, within: 1h}
        window: 7d
      - {event: Order Completed, window: 7d, count: 0}
  holdout: 10%
---
apiVersion: personas/v1
kind: Audience
metadata: {name: checkout_abandoners}
spec:
  include: {event: Checkout Started, window: 3d}
  exclude: {event: Order Completed, window: 3d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: high_value}
spec:
  include: {trait: revenue_180d, gte: 500}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: high_value_opted_in}
spec:
  include:
    all:
      - audience: high_value
      - {trait: email_opt_in, equals: true}
  holdout: 10%
---
apiVersion: personas/v1
kind: Audience
metadata: {name: email_reachable}
spec:
  include: {trait: email_opt_in, equals: true}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: sms_reachable}
spec:
  include: {trait: sms_opt_in, equals: true}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: browsers_without_cart}
spec:
  include:
    all:
      - {trait: product_views_30d, gte: 5}
      - {trait: cart_adds_7d, equals: 0}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: book_fans}
spec:
  include: {trait: favorite_category, equals: books}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: active_30d}
spec:
  include: {trait: last_seen, within_last: 30d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: dormant}
spec:
  include: {trait: last_seen, before_last: 60d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: new_visitors}
spec:
  include: {trait: first_seen, within_last: 14d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: music_browsers}
spec:
  include: {trait: categories_viewed_90d, contains: music}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: deal_hunters}
spec:
  include:
    event: Page Viewed
    where: [{property: name, equals: Deals}]
    window: 30d
    count: {gte: 3}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: engaged}
spec:
  include:
    any:
      - {trait: page_views_30d, gte: 10}
      - {trait: product_views_30d, gte: 10}
      - audience: recent_buyers
---
apiVersion: personas/v1
kind: Audience
metadata: {name: lapsed_high_value}
spec:
  include:
    all:
      - audience: high_value
      - not: {audience: active_30d}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: accounts_with_buyers}
spec:
  entity: account
  include:
    any_user: {event: Order Completed, window: 90d}
"""


def _days(count: int) -> str:
    return f"{AS_OF_SQL} - INTERVAL {count} DAY"


def _counter(where: str) -> str:
    """Event count per candidate, 0 without matching events."""
    return (
        "SELECT c.profile_id AS subject_id, COALESCE(x.value, 0) AS value FROM hand.candidates c "
        f"LEFT JOIN (SELECT profile_id, COUNT(*) AS value FROM hand.ev WHERE {where} GROUP BY profile_id) x "
        "ON x.profile_id = c.profile_id"
    )


def _aggregate(function: str, property_name: str, where: str) -> str:
    value = f"TRY_CAST(json_extract_string(properties, '$.{property_name}') AS DECIMAL(38, 9))"
    # personas stores every number as DECIMAL(38, 9), so the average is rounded the same way.
    result = f"CAST({function}(value) AS DECIMAL(38, 9))" if function == "AVG" else f"{function}(value)"
    return (
        f"SELECT profile_id AS subject_id, {result} AS value FROM "
        f"(SELECT profile_id, {value} AS value FROM hand.ev WHERE {where}) WHERE value IS NOT NULL GROUP BY profile_id"
    )


def _most_frequent(property_name: str, where: str, minimum: int) -> str:
    return (
        "SELECT subject_id, value FROM ("
        "SELECT subject_id, value, ROW_NUMBER() OVER (PARTITION BY subject_id ORDER BY occurrences DESC, value) AS rank "
        f"FROM (SELECT profile_id AS subject_id, json_extract_string(properties, '$.{property_name}') AS value, COUNT(*) AS occurrences "
        f"FROM hand.ev WHERE {where} AND json_extract_string(properties, '$.{property_name}') IS NOT NULL GROUP BY 1, 2) "
        f"WHERE occurrences >= {minimum}) WHERE rank = 1"
    )


def _identify(trait: str, cast: str) -> str:
    """Select the value of the latest identify call whose traits hold the key; an explicit null clears it."""
    return (
        f"SELECT profile_id AS subject_id, CAST(json_extract_string(arg_max(json_extract(traits, '$.{trait}'), (timestamp, message_id)), '$') AS {cast}) AS value "
        f"FROM hand.ev WHERE type = 'identify' AND json_extract(traits, '$.{trait}') IS NOT NULL GROUP BY profile_id"
    )


def _members(where: str, having: str = "COUNT(*) >= 1") -> str:
    return f"SELECT profile_id AS subject_id FROM hand.ev WHERE {where} GROUP BY profile_id HAVING {having}"


def _trait_members(trait: str, test: str) -> str:
    return f"SELECT subject_id FROM hand.t_{trait} WHERE {test}"


ORDERS = "event = 'Order Completed'"
VIEWS = "event = 'Product Viewed'"
PAGES = "event = 'Page Viewed'"

# The relations every statement reads: events before as_of with their profile, and the candidates.
HAND_SETUP = [
    "CREATE SCHEMA IF NOT EXISTS hand",
    "CREATE OR REPLACE VIEW hand.ev AS SELECT e.message_id, e.type, e.event, e.timestamp, m.profile_id, "
    "e.group_id, e.properties, e.traits FROM personas_events e JOIN personas_message_profiles m "
    f"ON m.message_id = e.message_id WHERE e.timestamp < {AS_OF_SQL} AND m.profile_id IS NOT NULL",
    "CREATE OR REPLACE TABLE hand.candidates AS SELECT profile_id FROM personas_profiles "
    f"WHERE merged_into IS NULL AND first_seen < {AS_OF_SQL}",
]

# Trait name -> (value type, SELECT subject_id, value).
HAND_TRAITS: dict[str, tuple[str, str]] = {
    "orders_90d": ("number", _counter(f"{ORDERS} AND timestamp >= {_days(90)}")),
    "product_views_30d": ("number", _counter(f"{VIEWS} AND timestamp >= {_days(30)}")),
    "cart_adds_7d": ("number", _counter(f"event = 'Product Added' AND timestamp >= {_days(7)}")),
    "page_views_30d": ("number", _counter(f"{PAGES} AND timestamp >= {_days(30)}")),
    "expensive_views_30d": (
        "number",
        _counter(f"{VIEWS} AND timestamp >= {_days(30)} AND TRY_CAST(json_extract_string(properties, '$.price') AS DECIMAL(38, 9)) >= 100"),
    ),
    "revenue_180d": ("number", _aggregate("SUM", "revenue", f"{ORDERS} AND timestamp >= {_days(180)}")),
    "avg_order_value": ("number", _aggregate("AVG", "revenue", ORDERS)),
    "max_order_value": ("number", _aggregate("MAX", "revenue", ORDERS)),
    "min_price_viewed_30d": ("number", _aggregate("MIN", "price", f"{VIEWS} AND timestamp >= {_days(30)}")),
    "favorite_category": ("string", _most_frequent("category", VIEWS, 2)),
    "favorite_page": ("string", _most_frequent("name", PAGES, 3)),
    "first_seen": ("timestamp", f"SELECT profile_id AS subject_id, MIN(timestamp) AS value FROM hand.ev WHERE {PAGES} GROUP BY 1"),
    "last_seen": ("timestamp", f"SELECT profile_id AS subject_id, MAX(timestamp) AS value FROM hand.ev WHERE {PAGES} GROUP BY 1"),
    "last_order_at": ("timestamp", f"SELECT profile_id AS subject_id, MAX(timestamp) AS value FROM hand.ev WHERE {ORDERS} GROUP BY 1"),
    "first_category": (
        "string",
        "SELECT profile_id AS subject_id, arg_min(json_extract_string(properties, '$.category'), (timestamp, message_id)) AS value "
        f"FROM hand.ev WHERE {VIEWS} GROUP BY 1",
    ),
    "categories_viewed_90d": (
        "list",
        "SELECT c.profile_id AS subject_id, COALESCE(x.value, []) AS value FROM hand.candidates c LEFT JOIN "
        "(SELECT profile_id, list_sort(list_distinct(list(json_extract_string(properties, '$.category')))) AS value FROM hand.ev "
        f"WHERE {VIEWS} AND timestamp >= {_days(90)} GROUP BY 1) x ON x.profile_id = c.profile_id",
    ),
    "products_viewed_30d": (
        "number",
        "SELECT c.profile_id AS subject_id, COALESCE(x.value, 0) AS value FROM hand.candidates c LEFT JOIN "
        "(SELECT profile_id, COUNT(DISTINCT json_extract_string(properties, '$.product_id')) AS value FROM hand.ev "
        f"WHERE {VIEWS} AND timestamp >= {_days(30)} GROUP BY 1) x ON x.profile_id = c.profile_id",
    ),
    "email_opt_in": ("boolean", _identify("marketing_email", "BOOLEAN")),
    "sms_opt_in": ("boolean", _identify("marketing_sms", "BOOLEAN")),
    "accounts_joined": (
        "number",
        "SELECT i.profile_id AS subject_id, x.value FROM (SELECT user_id, COUNT(DISTINCT group_id) AS value "
        f"FROM personas_events WHERE type = 'group' AND timestamp < {AS_OF_SQL} GROUP BY user_id) x "
        "JOIN personas_identifiers i ON i.identifier_type = 'user_id' AND i.identifier_value = x.user_id "
        "JOIN hand.candidates c ON c.profile_id = i.profile_id",
    ),
}

_CART_SEQUENCE = (
    "SELECT DISTINCT viewed.profile_id AS subject_id FROM hand.ev viewed JOIN hand.ev added "
    "ON added.profile_id = viewed.profile_id AND added.event = 'Product Added' "
    "AND (added.timestamp, added.message_id) > (viewed.timestamp, viewed.message_id) "
    "AND added.timestamp <= viewed.timestamp + INTERVAL 1 HOUR "
    f"WHERE viewed.{VIEWS} AND viewed.timestamp >= {_days(7)}"
)

# Audience name -> SELECT subject_id of its members (holdout included).
HAND_AUDIENCES: dict[str, str] = {
    "recent_buyers": _members(f"{ORDERS} AND timestamp >= {_days(30)}"),
    "repeat_buyers": _members(f"{ORDERS} AND timestamp >= {_days(90)}", "COUNT(*) >= 2"),
    "winback": (
        _members(f"{ORDERS} AND timestamp >= {_days(120)} AND timestamp < {_days(45)}")
        + " EXCEPT " + _members(f"{ORDERS} AND timestamp >= {_days(45)}")
    ),
    "never_bought": "SELECT profile_id AS subject_id FROM hand.candidates EXCEPT " + _members(ORDERS),
    "cart_abandoners": f"{_CART_SEQUENCE} EXCEPT " + _members(f"{ORDERS} AND timestamp >= {_days(7)}"),
    "checkout_abandoners": (
        _members(f"event = 'Checkout Started' AND timestamp >= {_days(3)}")
        + " EXCEPT " + _members(f"{ORDERS} AND timestamp >= {_days(3)}")
    ),
    "high_value": _trait_members("revenue_180d", "value >= 500"),
    "high_value_opted_in": (
        "SELECT subject_id FROM hand.a_high_value INTERSECT " + _trait_members("email_opt_in", "value = true")
    ),
    "email_reachable": _trait_members("email_opt_in", "value = true"),
    "sms_reachable": _trait_members("sms_opt_in", "value = true"),
    "browsers_without_cart": (
        _trait_members("product_views_30d", "value >= 5") + " INTERSECT " + _trait_members("cart_adds_7d", "value = 0")
    ),
    "book_fans": _trait_members("favorite_category", "value = 'books'"),
    "active_30d": _trait_members("last_seen", f"value >= {_days(30)} AND value <= {AS_OF_SQL}"),
    "dormant": _trait_members("last_seen", f"value < {_days(60)}"),
    "new_visitors": _trait_members("first_seen", f"value >= {_days(14)} AND value <= {AS_OF_SQL}"),
    "music_browsers": _trait_members("categories_viewed_90d", "list_contains(value, 'music')"),
    "deal_hunters": _members(f"{PAGES} AND json_extract_string(properties, '$.name') = 'Deals' AND timestamp >= {_days(30)}", "COUNT(*) >= 3"),
    "engaged": (
        _trait_members("page_views_30d", "value >= 10")
        + " UNION " + _trait_members("product_views_30d", "value >= 10")
        + " UNION SELECT subject_id FROM hand.a_recent_buyers"
    ),
    "lapsed_high_value": "SELECT subject_id FROM hand.a_high_value EXCEPT SELECT subject_id FROM hand.a_active_30d",
    "accounts_with_buyers": (
        "SELECT DISTINCT u.account_id AS subject_id FROM personas_account_users u "
        "JOIN hand.candidates c ON c.profile_id = u.profile_id "
        f"WHERE u.first_seen < {AS_OF_SQL} AND u.profile_id IN "
        f"({_members(f'{ORDERS} AND timestamp >= {_days(90)}')}) "
        "AND u.account_id IN (SELECT group_id FROM hand.ev WHERE group_id IS NOT NULL)"
    ),
}


def hand_statements() -> list[str]:
    """Return every statement of the hand-written side, in dependency order."""
    statements = list(HAND_SETUP)
    for name, (_, query) in HAND_TRAITS.items():
        statements.append(f"CREATE OR REPLACE TABLE hand.t_{name} AS {query}")
    for name, query in HAND_AUDIENCES.items():
        statements.append(f"CREATE OR REPLACE TABLE hand.a_{name} AS {query}")
    return statements
