"""Sync a 1,000,000-member audience to a file and a webhook destination, then a 1% change.

    python benchmarks/sync_1m.py [--members 1000000] [--change 0.01] [--batch-size 1000] [--workdir DIR]

For each destination type it builds a fresh project (embedded DuckDB
warehouse, SQLite state), fills the results tables directly (the members and
their user_id values; computing the audience is the engine benchmark's job),
and times two sync passes with the real engine: the first sends every
member, the second follows a change of `--change` of the membership (half
exits, half entries) and must send only that delta. The webhook receiver is
a plain HTTP server in a child process on 127.0.0.1 that counts changes.
Prints, per destination and pass: changes sent, seconds, changes per second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

AS_OF = datetime(2024, 4, 1, tzinfo=timezone.utc)

AUDIENCE = """
apiVersion: personas/v1
kind: Audience
metadata: {{name: big}}
spec:
  include: {{event: Order Completed}}
  destinations:
    - {{destination: out, identifier: user_id}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: out}}
spec:
{destination}
"""


# --------------------------------------------------------------------------- receiver

def serve(port_queue: multiprocessing.Queue) -> None:
    """A webhook receiver that acknowledges every batch and counts changes; GET returns the counts."""
    counts = {"requests": 0, "changes": 0, "entered": 0, "exited": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            counts["requests"] += 1
            for change in body["changes"]:
                counts["changes"] += 1
                counts[change["type"]] += 1
            self._answer(b"{}")

        def do_GET(self) -> None:  # noqa: N802
            self._answer(json.dumps(counts).encode())

        def _answer(self, payload: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


# --------------------------------------------------------------------------- project

def make_project(root: Path, destination: str) -> None:
    root.mkdir(parents=True)
    (root / ".personas").mkdir()
    (root / "personas.yaml").write_text("version: 1\nname: bench\n")
    (root / "specs.yaml").write_text(textwrap.dedent(AUDIENCE.format(destination=destination)))
    apply_specs(root)


def apply_specs(root: Path) -> None:
    from reconciler.plan.normalize import normalize_resource, spec_hash
    from reconciler.project import load_project
    from reconciler.state import open_store
    from reconciler.state.records import AppliedChange, AuditEntry

    project = load_project(root)
    store = open_store(project.resolve_url(project.settings.state))
    store.initialize()
    changes = []
    for resource in project.resources:
        normalized = normalize_resource(resource)
        changes.append(AppliedChange(action="create", address=resource.address, kind=resource.kind, name=resource.name,
                                     spec=normalized, spec_hash=spec_hash(normalized)))
    state = store.read()
    store.apply(state.serial, state.lineage, changes, AuditEntry(plan={}))
    store.close()


def fill(root: Path, members: int) -> None:
    """Profiles p_1..p_N with user_id u_1..u_N, all members of `big`."""
    from reconciler.engine.warehouse import open_warehouse

    project, store = open_project(root)
    audience_id = store.read().resources["audience.big"].id
    store.close()
    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
        with warehouse.engine.begin() as connection:
            connection.execute(sa.text(
                "CREATE TABLE IF NOT EXISTS personas_audience_members (audience_id TEXT, audience TEXT, subject_id TEXT,"
                " holdout BOOLEAN, run_id TEXT, as_of TIMESTAMP)"))
            connection.execute(sa.text(
                "CREATE TABLE IF NOT EXISTS personas_trait_values (trait_id TEXT, trait TEXT, entity TEXT, subject_id TEXT,"
                " value_type TEXT, value_text TEXT, value_number DECIMAL(38,9), value_boolean BOOLEAN,"
                " value_timestamp TIMESTAMP, value_json JSON, run_id TEXT, as_of TIMESTAMP)"))
            connection.execute(sa.text(
                "INSERT INTO personas_identifiers SELECT 'user_id', 'u_' || i, 'p_' || i, TIMESTAMP '2024-03-01',"
                " TIMESTAMP '2024-03-01' FROM range(1, :n + 1) t(i)"), {"n": members})
            connection.execute(sa.text(
                "INSERT INTO personas_audience_members SELECT :a, 'big', 'p_' || i, false, 'r1', TIMESTAMP '2024-04-01'"
                " FROM range(1, :n + 1) t(i)"), {"a": audience_id, "n": members})


def change_membership(root: Path, members: int, share: float) -> int:
    """Half of the change exits (the first members), half enters (new profiles); returns changes expected."""
    from reconciler.engine.warehouse import open_warehouse

    project, store = open_project(root)
    audience_id = store.read().resources["audience.big"].id
    store.close()
    half = max(1, int(members * share / 2))
    with open_warehouse(project) as warehouse, warehouse.engine.begin() as connection:
        connection.execute(sa.text(
            "DELETE FROM personas_audience_members WHERE CAST(substr(subject_id, 3) AS BIGINT) <= :h"), {"h": half})
        connection.execute(sa.text(
            "INSERT INTO personas_identifiers SELECT 'user_id', 'u_' || i, 'p_' || i, TIMESTAMP '2024-03-02',"
            " TIMESTAMP '2024-03-02' FROM range(:n + 1, :n + :h + 1) t(i)"), {"n": members, "h": half})
        connection.execute(sa.text(
            "INSERT INTO personas_audience_members SELECT :a, 'big', 'p_' || i, false, 'r2', TIMESTAMP '2024-04-01'"
            " FROM range(:n + 1, :n + :h + 1) t(i)"), {"a": audience_id, "n": members, "h": half})
    return 2 * half


def open_project(root: Path):
    from reconciler.project import load_project
    from reconciler.state import open_store

    project = load_project(root)
    return project, open_store(project.resolve_url(project.settings.state))


def sync_pass(root: Path, run_id: str) -> tuple[object, float]:
    from reconciler.destinations.sync import sync_audiences
    from reconciler.engine.warehouse import open_warehouse

    project, store = open_project(root)
    try:
        with open_warehouse(project) as warehouse:
            started = time.perf_counter()
            records = sync_audiences(project, store, warehouse, run_id, AS_OF, ["big"])
            elapsed = time.perf_counter() - started
    finally:
        store.close()
    (record,) = records
    if record.status != "ok" or record.acknowledged != record.sent:
        raise SystemExit(f"sync {run_id} did not finish cleanly: {record}")
    return record, elapsed


# --------------------------------------------------------------------------- main

def bench(kind: str, destination: str, workdir: Path, members: int, share: float) -> list[dict[str, object]]:
    root = workdir / kind
    make_project(root, destination)
    fill(root, members)
    results = []
    for label, run_id in (("full", "full"), ("delta", "delta")):
        if label == "delta":
            expected = change_membership(root, members, share)
        record, elapsed = sync_pass(root, run_id)
        if label == "delta" and record.sent != expected:
            raise SystemExit(f"{kind}: the {share:.0%} change sent {record.sent} changes, expected exactly {expected}")
        results.append({"destination": kind, "pass": label, "changes": record.sent, "seconds": round(elapsed, 2),
                        "changes_per_s": round(record.sent / elapsed) if elapsed else None})
        print(f"{kind:<8} {label:<6} {record.sent:>9,} changes  {elapsed:8.2f}s  {record.sent / elapsed:>10,.0f} changes/s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--change", type=float, default=0.01, help="Share of the membership that changes in the second pass.")
    parser.add_argument("--batch-size", type=int, default=1000, help="Webhook changes per request.")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this file.")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="personas-sync-bench-"))
    ports: multiprocessing.Queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    receiver.start()
    port = ports.get(timeout=30)
    print(f"{args.members:,} members, {args.change:.0%} change, webhook batches of {args.batch_size}; work folder {workdir}")
    results = bench("file", f"  type: file\n  path: {workdir / 'files'}", workdir, args.members, args.change)
    results += bench("webhook", f"  type: webhook\n  url: http://127.0.0.1:{port}/hook\n  batch_size: {args.batch_size}",
                     workdir, args.members, args.change)
    receiver.terminate()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
