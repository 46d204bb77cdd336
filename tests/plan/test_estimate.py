"""`plan --estimate`: audience sizes from the warehouse beside the plan, which stays unchanged."""

from __future__ import annotations

import json

from .conftest import Project

EVENTS = [
    {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m1", "timestamp": "2024-03-01T00:00:00Z"},
    {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m2", "timestamp": "2024-03-02T00:00:00Z"},
    {"type": "track", "event": "Order Completed", "userId": "u2", "messageId": "m3", "timestamp": "2024-03-02T00:00:00Z"},
    {"type": "track", "event": "Order Completed", "userId": "u3", "messageId": "m4", "timestamp": "2024-04-02T00:00:00Z"},
]


def test_estimate_prints_audience_sizes_after_the_plan(tmp_path):
    from reconciler.engine.ingest import ingest_files
    from reconciler.engine.warehouse import open_warehouse
    from reconciler.project import load_project

    project = Project(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
    project.write("personas.yaml", "version: 1\nname: shop\nas_of: 2024-03-31T00:00:00Z\nstate: ${PERSONAS_STATE_URL}\n")
    project.write("traits/orders.yaml", "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: orders}\nspec: {type: event_counter, event: Order Completed}\n")
    project.write("audiences/buyers.yaml", "apiVersion: personas/v1\nkind: Audience\nmetadata: {name: buyers}\nspec:\n  include: {trait: orders, gte: 1}\n")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(event) + "\n" for event in EVENTS))
    with open_warehouse(load_project(tmp_path)) as warehouse:
        ingest_files(warehouse, [events])

    plain = project.run("plan")
    result = project.run("plan", "--estimate")
    assert result.exit_code == 0, result.output
    # Two profiles ordered before as_of; the third order comes after it.
    assert result.stdout == plain.stdout + "Estimated sizes (members before -> after):\n  audience.buyers: (none) -> 2\n"
