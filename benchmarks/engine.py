#!/usr/bin/env python3
"""Measure the personas engine against hand-written DuckDB SQL on generated events.

    python benchmarks/engine.py --events 1000000 [--seed 7] [--workdir DIR]

Steps, each in its own child process so that its wall time and peak memory
(the child's maximum resident set size, from wait4) are its own:

1. generate  benchmarks/generate_events.py writes the events (skipped when
             the file for these --events and --seed already exists)
2. ingest    `personas ingest --no-resolve FILE`
3. identity  the engine's resolve(): identity resolution of every message
4. apply     `personas apply --auto-approve`: 20 traits and 20 audiences
5. run       `personas run --no-sync`: computes all of them at as_of
6. hand_sql  the same 20 traits and 20 audiences as plain DuckDB SQL
             (benchmarks/workload.py) over the same tables

Steps 2 and 3 together are what `personas ingest FILE` does. No command
resolves identities alone, so step 3 calls the engine function that
`personas ingest` and `personas run` call.

The script prints one line per step, the ratio of `run` to `hand_sql`, and
a comparison of the results: for each trait and audience, the number of
subjects on each side and how many differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402  (a sibling module of this script)

PERSONAS = Path(sys.executable).parent / "personas"

IDENTITY_CHILD = """
import sys
from pathlib import Path
from reconciler.project import load_project
from reconciler.engine.warehouse import open_warehouse
from reconciler.engine.identity import resolve
project = load_project(Path(sys.argv[1]))
with open_warehouse(project) as warehouse:
    summary = resolve(warehouse, project.settings.identity)
print(f"{summary.messages} messages, {summary.profiles_created} profiles, {summary.merges} merges, "
      f"{summary.refused_merges} refused")
"""


@dataclass
class Step:
    """Wall time, peak memory and outcome of one child process."""

    name: str
    seconds: float
    peak_mb: float
    exit_code: int
    note: str


def ingest_counts(output: str) -> str:
    """Return the read, stored and quarantined counts from the output of `personas ingest`."""
    counts = ("read", "stored", "quarantined")
    return ", ".join(" ".join(line.split()) for line in output.splitlines() if line.strip().startswith(counts))


def measure(name: str, command: list[str], cwd: Path, summarize: Callable[[str], str] | None = None) -> Step:
    """Run a command as a child process and return its wall time and peak resident memory.

    The step's note is the last line of its output, or what `summarize` makes of the output.
    """
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = _drain(process)
    # wait4 returns this child's own rusage, where RUSAGE_CHILDREN would mix all children.
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    exit_code = os.waitstatus_to_exitcode(status)
    process.returncode = exit_code
    output = (stdout.strip() or stderr.strip()).splitlines()
    note = output[-1] if output else ""
    if summarize is not None:
        note = summarize(stdout)
    if exit_code != 0:
        note = stderr.strip()[-2000:] or note
    return Step(name, seconds, usage.ru_maxrss / 1024, exit_code, note)


def _drain(process: subprocess.Popen) -> tuple[str, str]:
    """Read a child's output to the end without reaping it, so that wait4 can."""
    chunks: dict[str, str] = {}

    def read(stream_name: str) -> None:
        chunks[stream_name] = getattr(process, stream_name).read()

    readers = [threading.Thread(target=read, args=(stream,)) for stream in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return chunks["stdout"], chunks["stderr"]


def write_project(folder: Path, memory_limit: str, threads: int) -> None:
    """Write the benchmark project: personas.yaml, 20 traits and 20 audiences."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "personas.yaml").write_text(workload.PROJECT_YAML.format(memory_limit=memory_limit, threads=threads))
    (folder / "traits.yaml").write_text(workload.TRAITS_YAML)
    (folder / "audiences.yaml").write_text(workload.AUDIENCES_YAML)


def run_hand_sql(database: Path, memory_limit: str, threads: int) -> None:
    """Execute the hand-written statements; the parent times this process as a whole."""
    import duckdb

    connection = duckdb.connect(str(database), config={"memory_limit": memory_limit, "threads": threads})
    for statement in workload.hand_statements():
        connection.execute(statement)
    connection.close()
    print(f"{len(workload.hand_statements())} statements")


def compare(database: Path) -> list[dict]:
    """Compare personas' results with the hand-written tables, per trait and audience."""
    import duckdb

    connection = duckdb.connect(str(database))
    rows = []
    for name, (value_type, _) in workload.HAND_TRAITS.items():
        engine_value = _ENGINE_VALUE[value_type]
        hand_value = "CAST(h.value AS VARCHAR[])" if value_type == "list" else "h.value"
        engine = f"SELECT subject_id, {engine_value} AS value FROM personas_trait_values WHERE trait = '{name}'"
        differing = (
            f"SELECT COUNT(*) FROM ({engine}) e FULL JOIN hand.t_{name} h ON h.subject_id = e.subject_id "
            f"WHERE e.value IS DISTINCT FROM {hand_value}"
        )
        rows.append(_compare_row(connection, "trait", name, engine, f"SELECT * FROM hand.t_{name}", differing))
    for name in workload.HAND_AUDIENCES:
        engine = f"SELECT subject_id FROM personas_audience_members WHERE audience = '{name}'"
        differing = (
            f"SELECT (SELECT COUNT(*) FROM (({engine}) EXCEPT (SELECT subject_id FROM hand.a_{name}))) "
            f"+ (SELECT COUNT(*) FROM ((SELECT subject_id FROM hand.a_{name}) EXCEPT ({engine})))"
        )
        rows.append(_compare_row(connection, "audience", name, engine, f"SELECT * FROM hand.a_{name}", differing))
    connection.close()
    return rows


# The personas_trait_values column holding each value type, read for comparison.
_ENGINE_VALUE = {
    "number": "value_number",
    "string": "value_text",
    "boolean": "value_boolean",
    "timestamp": "value_timestamp",
    "list": "CAST(value_json AS VARCHAR[])",
}


def _compare_row(connection, kind: str, name: str, engine: str, hand: str, differing: str) -> dict:
    row = {"kind": kind, "name": name}
    try:
        row["personas"] = connection.execute(f"SELECT COUNT(*) FROM ({engine})").fetchone()[0]
        row["hand"] = connection.execute(f"SELECT COUNT(*) FROM ({hand})").fetchone()[0]
        row["differing"] = connection.execute(differing).fetchone()[0]
    except Exception as error:  # noqa: BLE001 - a comparison failure is reported, not fatal
        row["error"] = str(error).splitlines()[0]
    return row


STEP_HEADER = f"{'step':<10} {'wall s':>9} {'peak MB':>9}  note"


def format_step(step: Step) -> str:
    status = "" if step.exit_code == 0 else f"FAILED (exit {step.exit_code}): "
    note = step.note if step.exit_code != 0 else (step.note.splitlines() or [""])[-1]
    return f"{step.name:<10} {step.seconds:>9.1f} {step.peak_mb:>9.0f}  {status}{note}"


def print_comparison(rows: list[dict]) -> int:
    """Print the per-resource comparison and return how many resources differ."""
    print(f"\n{'resource':<32} {'personas':>9} {'hand':>9} {'differing':>9}")
    mismatches = 0
    for row in rows:
        label = f"{row['kind']}.{row['name']}"
        if "error" in row:
            print(f"{label:<32} not compared: {row['error']}")
            mismatches += 1
            continue
        mismatches += row["differing"] > 0
        print(f"{label:<32} {row['personas']:>9} {row['hand']:>9} {row['differing']:>9}")
    return mismatches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark ingest, identity resolution and runs against hand-written SQL.")
    parser.add_argument("--events", type=int, default=1_000_000, help="number of generated messages (default: 1000000)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    parser.add_argument("--workdir", type=Path, help="folder for the events file and project (default: a new temporary folder)")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit on both sides (default: 2GB)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="DuckDB threads on both sides (default: CPU cores)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--hand-sql-only", type=Path, metavar="DUCKDB_FILE", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.hand_sql_only:
        run_hand_sql(arguments.hand_sql_only, arguments.memory_limit, arguments.threads)
        return 0

    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="personas-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    events_file = workdir / f"events-{arguments.events}-seed{arguments.seed}.jsonl.gz"
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)  # every measurement starts from an empty warehouse and state
    write_project(project, arguments.memory_limit, arguments.threads)
    database = project / ".personas" / "warehouse.duckdb"
    python = sys.executable

    print(f"personas engine benchmark: {arguments.events:,} events, seed {arguments.seed}, "
          f"{os.cpu_count()} cores, DuckDB memory_limit {arguments.memory_limit}, threads {arguments.threads}")
    print(f"work folder: {workdir}\n", flush=True)
    plan = [
        ("generate", [python, str(HERE / "generate_events.py"), "--events", str(arguments.events),
                      "--seed", str(arguments.seed), "--out", str(events_file)]),
        ("ingest", [str(PERSONAS), "--project", str(project), "ingest", "--no-resolve", str(events_file)]),
        ("identity", [python, "-c", IDENTITY_CHILD, str(project)]),
        ("apply", [str(PERSONAS), "--project", str(project), "apply", "--auto-approve"]),
        ("run", [str(PERSONAS), "--project", str(project), "run", "--no-sync"]),
        ("hand_sql", [python, str(Path(__file__).resolve()), "--hand-sql-only", str(database),
                      "--memory-limit", arguments.memory_limit, "--threads", str(arguments.threads)]),
    ]
    steps = []
    print(STEP_HEADER, flush=True)
    for name, command in plan:
        if name == "generate" and events_file.exists():
            step = Step(name, 0.0, 0.0, 0, f"reused {events_file.name}")
        else:
            step = measure(name, command, project, ingest_counts if name == "ingest" else None)
        steps.append(step)
        print(format_step(step), flush=True)
        if step.exit_code != 0:
            return 1

    by_name = {step.name: step for step in steps}
    ratio = by_name["run"].seconds / by_name["hand_sql"].seconds
    print(f"\nrun / hand_sql wall time: {ratio:.2f}x")
    rows = compare(database)
    mismatches = print_comparison(rows)
    print(f"\n{mismatches} of {len(rows)} resources differ between personas and the hand-written SQL")

    if arguments.json:
        record = {"events": arguments.events, "seed": arguments.seed, "cores": os.cpu_count(),
                  "memory_limit": arguments.memory_limit, "threads": arguments.threads,
                  "steps": [asdict(step) for step in steps], "run_over_hand_sql": ratio, "comparison": rows}
        arguments.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
