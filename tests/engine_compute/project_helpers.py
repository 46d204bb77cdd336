"""Small projects on disk for end-to-end tests: write, ingest, apply, run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import _run

SPECS = """\
apiVersion: personas/v1
kind: Trait
metadata: {name: order_count}
spec: {type: event_counter, event: Order Completed}
---
apiVersion: personas/v1
kind: Trait
metadata: {name: ltv}
spec: {type: aggregation, function: sum, property: revenue, event: Order Completed}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: buyers, labels: {tier: core}}
spec:
  include: {trait: order_count, gte: 1}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: big_buyers}
spec:
  include:
    all:
      - audience: buyers
      - trait: ltv
        gte: 50
"""


def write_project(root: Path, warehouse_url: str, specs: str = SPECS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "personas.yaml").write_text(
        "version: 1\nname: demo\n"
        f"warehouse: {warehouse_url}\n"
        "state: sqlite:///.personas/state.db\n"
        "identity:\n  identifiers:\n    - {type: user_id, limit: 1}\n"
    )
    (root / "specs.yaml").write_text(specs)
    return root


def order(message_id: str, user: str, at: str, revenue=None, event: str = "Order Completed") -> dict:
    properties = {} if revenue is None else {"revenue": revenue}
    return {"type": "track", "event": event, "userId": user, "messageId": message_id, "timestamp": at, "properties": properties}


def ingest(root: Path, messages: list[dict], name: str = "events.jsonl") -> None:
    from reconciler.engine.ingest import ingest_files
    from reconciler.engine.warehouse import open_warehouse
    from reconciler.project import load_project

    path = root / name
    path.write_text("".join(json.dumps(message) + "\n" for message in messages))
    project = load_project(root)
    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
        ingest_files(warehouse, [path])


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def personas(root: Path, *args: str) -> Outcome:
    """Run the CLI in-process as `personas` does, with its exit codes (3 included)."""
    runner = CliRunner()
    with runner.isolation() as streams:
        code = _run(["--project", str(root), *args], debug=False)
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return Outcome(code, stdout.decode(), stderr.decode())


def apply(root: Path) -> None:
    result = personas(root, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
