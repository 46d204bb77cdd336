"""A project folder, a state store, a warehouse and a webhook receiver for sync tests.

`Workspace` writes a project (personas.yaml + one resource file), applies it
to a real SQLite state store, and fills the results tables of a real DuckDB
(or PostgreSQL) warehouse by hand, with exactly the columns the compute
engine writes, so the sync engine can be driven without computing audiences.
`Receiver` is a real HTTP server on 127.0.0.1 in a thread that records every
request and answers with scripted faults.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

AS_OF = datetime(2024, 3, 31, tzinfo=timezone.utc)

RESULTS_DDL = (
    """CREATE TABLE IF NOT EXISTS personas_audience_members (
        audience_id TEXT, audience TEXT, subject_id TEXT, holdout BOOLEAN, run_id TEXT, as_of TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS personas_trait_values (
        trait_id TEXT, trait TEXT, entity TEXT, subject_id TEXT, value_type TEXT, value_text TEXT,
        value_number DECIMAL(38,9), value_boolean BOOLEAN, value_timestamp TIMESTAMP, value_json JSON,
        run_id TEXT, as_of TIMESTAMP)""",
)


# --------------------------------------------------------------------------- webhook receiver

@dataclass
class Delivery:
    """One request the receiver answered."""

    status: int
    headers: dict[str, str]
    body: bytes
    path: str

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def changes(self) -> list[dict[str, Any]]:
        return self.document["changes"]


@dataclass
class Receiver:
    """Scripted answers: `script` is consumed one entry per request (then 200s).

    An entry is a status code, a (status, headers) pair, "drop" (close the
    connection without answering), ("sleep", seconds) then 200, or a callable
    taking the parsed body and returning one of those.
    """

    server: ThreadingHTTPServer
    script: list[Any] = field(default_factory=list)
    requests: list[Delivery] = field(default_factory=list)
    reject_values: set[str] = field(default_factory=set)
    reject_status: int = 400
    lock: threading.Lock = field(default_factory=threading.Lock)
    log_path: Path | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/secret-token?key=abc"

    @property
    def acknowledged(self) -> list[Delivery]:
        return [request for request in self.requests if 200 <= request.status < 300]

    def acknowledged_changes(self) -> list[dict[str, Any]]:
        return [change for request in self.acknowledged for change in request.changes]

    def holdings(self) -> dict[str, set[str]]:
        """What a receiver applying the acknowledged changes in order would hold, per audience."""
        held: dict[str, set[str]] = {}
        for change in self.acknowledged_changes():
            values = held.setdefault(change["audience"], set())
            if change["type"] == "exited":
                values.discard(change["identifier"]["value"])
            else:
                values.add(change["identifier"]["value"])
        return held

    def next_answer(self, body: bytes) -> Any:
        with self.lock:
            answer = self.script.pop(0) if self.script else 200
        if callable(answer):
            answer = answer(json.loads(body))
        if answer == 200 and self.reject_values:
            values = {change["identifier"]["value"] for change in json.loads(body)["changes"]}
            if values & self.reject_values:
                refused = sorted(values & self.reject_values)
                return (self.reject_status, {}, json.dumps({"error": "invalid identifier", "values": refused}))
        return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver(log_path: Path | None = None) -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver = holder["receiver"]
            try:
                json.loads(body)
            except ValueError:  # a sender killed halfway through its request
                answer = (400, {}, "incomplete body")
            else:
                answer = receiver.next_answer(body)
            if answer == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if isinstance(answer, tuple) and answer[0] == "sleep":
                time.sleep(answer[1])
                answer = 200
            status, headers, text = _answer_parts(answer)
            with receiver.lock:
                receiver.requests.append(Delivery(status, dict(self.headers), body, self.path))
                if receiver.log_path is not None and 200 <= status < 300:
                    with receiver.log_path.open("a") as log:
                        log.write(body.decode() + "\n")
            payload = text.encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server=server, log_path=log_path)
    holder["receiver"] = receiver
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def _answer_parts(answer: Any) -> tuple[int, dict[str, str], str]:
    if isinstance(answer, int):
        return answer, {}, "{}" if answer < 300 else f"error {answer}"
    if len(answer) == 2:
        return answer[0], answer[1], f"error {answer[0]}"
    return answer


# --------------------------------------------------------------------------- project and warehouse

class Workspace:
    """A project with a state store and a warehouse whose results tables the test fills."""

    def __init__(self, root: Path, warehouse_url: str | None = None, *, create: bool = True) -> None:
        self.root = root
        self.run_number = 0
        if not create:
            return
        (root / ".personas").mkdir(parents=True, exist_ok=True)
        lines = ["version: 1", "name: synctest", "runtime: {sync_concurrency: 4}"]
        if warehouse_url:
            lines.append(f"warehouse: {warehouse_url}")
        (root / "personas.yaml").write_text("\n".join(lines) + "\n")

    # ---- specs and state
    def write_specs(self, text: str) -> None:
        (self.root / "resources.yaml").write_text(textwrap.dedent(text))

    def project(self) -> Any:
        from reconciler.project import load_project

        return load_project(self.root)

    def store(self) -> Any:
        from reconciler.state import open_store

        store = open_store(f"sqlite:///{self.root / '.personas' / 'state.db'}")
        if not store.exists():
            store.initialize()
        return store

    def apply(self) -> None:
        """Apply the specs as they are: create, update, move (previous_names) and delete."""
        from reconciler.plan.normalize import normalize_resource, spec_hash
        from reconciler.state.records import AppliedChange, AuditEntry

        project = self.project()
        store = self.store()
        try:
            state = store.read()
            changes = []
            wanted = {resource.address: resource for resource in project.resources}
            moved_from = set()
            for address, resource in wanted.items():
                normalized = normalize_resource(resource)
                common = dict(address=address, kind=resource.kind, name=resource.name, spec=normalized, spec_hash=spec_hash(normalized),
                              previous_names=list(resource.metadata.previous_names))
                record = state.resources.get(address)
                previous = next((f"{resource.kind.lower()}.{name}" for name in resource.metadata.previous_names
                                 if f"{resource.kind.lower()}.{name}" in state.resources), None)
                if record is None and previous:
                    moved_from.add(previous)
                    changes.append(AppliedChange(action="move", previous_address=previous, **common))
                elif record is None:
                    changes.append(AppliedChange(action="create", **common))
                elif record.spec_hash != common["spec_hash"]:
                    changes.append(AppliedChange(action="update", **common))
            for address, record in state.resources.items():
                if address not in wanted and address not in moved_from:
                    changes.append(AppliedChange(action="delete", address=address, kind=record.kind, name=record.name))
            if changes:
                store.apply(state.serial, state.lineage, changes, AuditEntry(plan={}))
        finally:
            store.close()

    def ids(self) -> dict[str, str]:
        store = self.store()
        try:
            return {address: record.id for address, record in store.read().resources.items()}
        finally:
            store.close()

    # ---- warehouse contents
    def warehouse(self) -> Any:
        from reconciler.engine.warehouse import open_warehouse

        return open_warehouse(self.project())

    def prepare(self) -> None:
        with self.warehouse() as wh:
            wh.ensure_schema()
            with wh.engine.begin() as connection:
                for ddl in RESULTS_DDL:
                    connection.execute(sa.text(ddl))

    def set_members(self, audience: str, subjects: list[str], holdout: set[str] = frozenset()) -> None:
        audience_id = self.ids()[f"audience.{audience}"]
        with self.warehouse() as wh, wh.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM personas_audience_members WHERE audience_id = :a"), {"a": audience_id})
            if subjects:
                connection.execute(
                    sa.text("INSERT INTO personas_audience_members VALUES (:a, :n, :s, :h, 'r', :t)"),
                    [{"a": audience_id, "n": audience, "s": s, "h": s in holdout, "t": AS_OF.replace(tzinfo=None)} for s in subjects],
                )

    def set_identifiers(self, rows: list[tuple[str, str, str, int]]) -> None:
        """(profile_id, identifier_type, identifier_value, last_seen day of March 2024); replaces the values given."""
        from reconciler.engine import layout

        table = layout.identifiers
        with self.warehouse() as wh, wh.engine.begin() as connection:
            for kind in {row[1] for row in rows}:
                values = [row[2] for row in rows if row[1] == kind]
                connection.execute(sa.delete(table).where(table.c.identifier_type == kind, table.c.identifier_value.in_(values)))
            connection.execute(sa.insert(table), [
                {"profile_id": profile, "identifier_type": kind, "identifier_value": value,
                 "first_seen": datetime(2024, 3, day), "last_seen": datetime(2024, 3, day)}
                for profile, kind, value, day in rows
            ])

    def delete_identifier(self, kind: str, value: str) -> None:
        from reconciler.engine import layout

        with self.warehouse() as wh, wh.engine.begin() as connection:
            connection.execute(sa.delete(layout.identifiers).where(
                layout.identifiers.c.identifier_type == kind, layout.identifiers.c.identifier_value == value))

    def set_trait(self, trait: str, subject: str, value: Any) -> None:
        trait_id = self.ids().get(f"trait.{trait}")
        if isinstance(value, bool):
            kind = "boolean"
        elif isinstance(value, (int, float)):
            kind = "number"
        else:
            kind = "string"
        with self.warehouse() as wh, wh.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM personas_trait_values WHERE trait = :t AND subject_id = :s"), {"t": trait, "s": subject})
            connection.execute(
                sa.text(
                    "INSERT INTO personas_trait_values (trait_id, trait, entity, subject_id, value_type, value_text, value_number,"
                    " value_boolean, run_id, as_of) VALUES (:i, :t, 'user', :s, :k, :x, :n, :b, 'r', :a)"
                ),
                {"i": trait_id, "t": trait, "s": subject, "k": kind, "x": value if kind == "string" else None,
                 "n": value if kind == "number" else None, "b": value if kind == "boolean" else None, "a": AS_OF.replace(tzinfo=None)},
            )

    def users(self, count: int, start: int = 1, kind: str = "user_id") -> list[str]:
        """Profiles p_<n> with identifier values u_<n> (or e<n>@example.com for email)."""
        subjects = [f"p_{n}" for n in range(start, start + count)]
        values = [(f"p_{n}", kind, f"u_{n}" if kind == "user_id" else f"e{n}@example.com", 1) for n in range(start, start + count)]
        self.set_identifiers(values)
        return subjects

    # ---- syncing
    def sync(
        self, options: Any = None, run_id: str | None = None, audiences: list[str] | None = None, as_of: datetime = AS_OF
    ) -> list[Any]:
        from reconciler.destinations.sync import sync_audiences

        self.run_number += 1
        run_id = run_id or f"run-{self.run_number}-{uuid.uuid4().hex[:6]}"
        project = self.project()
        store = self.store()
        try:
            with self.warehouse() as wh:
                names = audiences if audiences is not None else list(project.audiences)
                return sync_audiences(project, store, wh, run_id, as_of, names, options)
        finally:
            store.close()

    def query(self, sql: str, **params: Any) -> list[tuple]:
        with self.warehouse() as wh, wh.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]


def record_of(records: list[Any], audience: str, destination: str) -> Any:
    return next(r for r in records if r.audience == audience and r.destination == destination)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
