"""A project using every spec shape: each trait type, condition kind and destination type."""

from __future__ import annotations

SECRETS = {"CRM_TOKEN": "tok_live_FAKE123", "CRM_SIGNING_SECRET": "whsec_FAKE456", "TABLE_PASSWORD": "pw_FAKE789"}

PROJECT_FILE = """
version: 1
name: shop
state: ${PERSONAS_STATE_URL}
identity:
  identifiers:
    - {type: user_id, limit: 1}
    - {type: email, limit: 5, normalize: email, from: [traits.email, context.traits.email]}
    - {type: anonymous_id, limit: 50}
  blocked_values: ["", "null", "undefined"]
"""

TRAITS = """
apiVersion: personas/v1
kind: Trait
metadata:
  name: orders_90d
  description: Orders in the last 90 days
  owner: growth
  labels: {tier: core}
spec:
  type: event_counter
  event: Order Completed
  where:
    - {property: revenue, gt: 0}
    - {property: currency, in: [USD, EUR]}
  window: 90d
---
apiVersion: personas/v1
kind: Trait
metadata: {name: ltv}
spec:
  type: aggregation
  event: Order Completed
  function: sum
  property: revenue
  window: {from: 365d}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: top_category}
spec: {type: most_frequent, event: Product Viewed, property: category, min_frequency: 3}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: first_seen}
spec: {type: first, event: Page Viewed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: last_plan}
spec: {type: last, event: Plan Changed, property: plan, value_type: string}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: skus}
spec: {type: unique_list, event: Order Completed, property: sku, window: {from: 120d, to: 45d}}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: sku_count}
spec: {type: unique_count, event: Order Completed, property: sku}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: email_opt_in}
spec: {type: identify, trait: email_opt_in, value_type: boolean}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: vip_score}
spec:
  type: sql
  identifier: user_id
  value_type: number
  query: SELECT user_id, score FROM vip_scores WHERE scored_at < :as_of
---
apiVersion: personas/v1
kind: Trait
metadata: {name: seats}
spec: {entity: account, type: identify, trait: seats, value_type: number}
"""

AUDIENCES = """
apiVersion: personas/v1
kind: Audience
metadata: {name: winback, description: "", protected: false}
spec:
  include:
    all:
      - event: Order Completed
        window: {from: 120d, to: 45d}
        count: {gte: 1}
      - not:
          event: Order Completed
          window: 45d
      - trait: email_opt_in
        equals: true
      - {trait: ltv, between: [100, 500.5]}
      - {trait: first_seen, within_last: 400d}
  exclude:
    any:
      - audience: complainers
      - {trait: top_category, in: [returns, refunds]}
  holdout: 10%
  refresh: 1h
  freshness: 3h
  destinations:
    - destination: crm_webhook
      identifier: email
      traits: [ltv, orders_90d]
      send_updates: true
    - {destination: exports, identifier: user_id, identifier_values: all}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: complainers}
spec:
  include: {event: Complaint Filed, count: 0}
  refresh: "0 6 * * *"
---
apiVersion: personas/v1
kind: Audience
metadata: {name: funnel_drop}
spec:
  include:
    sequence:
      - {event: Product Viewed, where: [{property: category, starts_with: shoe}]}
      - {event: Product Added, within: 1h}
      - {event: Checkout Started, within: 2d}
    window: 30d
  destinations:
    - {destination: onsite, identifier: anonymous_id}
    - {destination: member_table, identifier: user_id}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: big_accounts}
spec:
  entity: account
  include:
    all:
      - {trait: seats, gte: 50}
      - any_user: {event: Order Completed, window: 30d}
      - all_users: {trait: email_opt_in, exists: true}
      - no_user: {audience: complainers}
"""

DESTINATIONS = """
apiVersion: personas/v1
kind: Destination
metadata: {name: crm_webhook}
spec:
  type: webhook
  url: https://hooks.example.com/services/T000/B000
  headers:
    Authorization: "Bearer ${CRM_TOKEN}"
    X-Team: growth
  signing_secret: ${CRM_SIGNING_SECRET}
  batch_size: 250
  max_rate: 20/s
  max_removals: {share: 25%, at_least: 5}
  consent: [email_opt_in]
---
apiVersion: personas/v1
kind: Destination
metadata: {name: exports}
spec: {type: file, path: exports, format: jsonl, mode: mirror}
---
apiVersion: personas/v1
kind: Destination
metadata: {name: member_table}
spec:
  type: sql_table
  url: postgresql+psycopg://writer:${TABLE_PASSWORD}@127.0.0.1:5432/marketing
  table: audience_members
  schema: personas
---
apiVersion: personas/v1
kind: Destination
metadata: {name: onsite}
spec: {type: redis, url: "redis://127.0.0.1:6379/0", key_prefix: "site:", mode: add_only}
"""


def write_all(project) -> None:
    project.write("personas.yaml", PROJECT_FILE)
    project.write("traits/all.yaml", TRAITS)
    project.write("audiences/all.yaml", AUDIENCES)
    project.write("destinations/all.yaml", DESTINATIONS)
