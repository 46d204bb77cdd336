"""Time `personas plan` on a project of 1,000 resources, as a user runs it.

Generates 400 traits, 450 audiences and 150 destinations in 100 files,
applies them, then runs `personas plan` in a fresh process several times:
with no file changed, and with 10 files changed (40 trait updates). Prints the
minimum and median wall-clock and CPU times of a run. Goals:
under 1 s unchanged, under 2 s changed. The load average is printed with
them, since wall-clock time grows with whatever else the machine runs.

    python benchmarks/plan_1000.py [--runs 7] [--state-url URL] [--keep DIR]

Without --state-url the state is a SQLite file in the project folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAITS, AUDIENCES, DESTINATIONS, FILES = 400, 450, 150, 100
CHANGED_FILES = 10


def personas() -> list[str]:
    script = Path(sys.executable).with_name("personas")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from reconciler.cli import main; main()"]


def trait(index: int, window: str) -> str:
    return (
        f"apiVersion: personas/v1\nkind: Trait\nmetadata: {{name: trait_{index:04d}, owner: growth}}\n"
        f"spec:\n  type: event_counter\n  event: Event {index % 40}\n  where: [{{property: revenue, gt: {index}}}]\n"
        f"  window: {window}\n"
    )


def audience(index: int) -> str:
    traits = [f"trait_{(index * 7 + k) % TRAITS:04d}" for k in range(3)]
    destination = f"dest_{index % DESTINATIONS:04d}"
    return (
        f"apiVersion: personas/v1\nkind: Audience\nmetadata: {{name: audience_{index:04d}}}\n"
        "spec:\n  include:\n    all:\n"
        + "".join(f"      - {{trait: {name}, gte: 1}}\n" for name in traits)
        + f"      - {{event: Order Completed, window: {{from: 120d, to: 45d}}, count: {{gte: 2}}}}\n"
        f"  holdout: 5%\n  destinations:\n    - {{destination: {destination}, identifier: email, traits: [{traits[0]}]}}\n"
    )


def destination(index: int) -> str:
    return (
        f"apiVersion: personas/v1\nkind: Destination\nmetadata: {{name: dest_{index:04d}}}\n"
        f"spec: {{type: file, path: exports/{index:04d}, format: jsonl}}\n"
    )


def write_project(root: Path, window: str = "30d", changed: int = 0) -> None:
    """Write the project; the first `changed` trait files get another window."""
    root.joinpath("personas.yaml").write_text(
        "version: 1\nname: bench\nstate: ${PERSONAS_STATE_URL:-sqlite:///.personas/state.db}\n"
    )
    documents: list[list[str]] = [[] for _ in range(FILES)]
    for index in range(TRAITS):
        file = index % FILES
        documents[file].append(trait(index, "45d" if file < changed else window))
    for index in range(AUDIENCES):
        documents[index % FILES].append(audience(index))
    for index in range(DESTINATIONS):
        documents[index % FILES].append(destination(index))
    folder = root / "specs"
    folder.mkdir(exist_ok=True)
    for number, docs in enumerate(documents):
        folder.joinpath(f"part_{number:03d}.yaml").write_text("---\n".join(docs))


def run(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*personas(), "--project", str(root), *args], env=env, capture_output=True, text=True, check=False
    )


def timed(root: Path, runs: int, env: dict[str, str], expected_code: int) -> tuple[list[float], list[float]]:
    """Run `personas plan` `runs` times; return wall-clock and CPU (user + system) seconds of each run."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = run(root, "plan", "--detailed-exitcode", env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if result.returncode != expected_code:
            sys.exit(f"plan exited {result.returncode}, expected {expected_code}:\n{result.stdout[-2000:]}{result.stderr}")
    return walls, cpus


def report(label: str, measured: tuple[list[float], list[float]], goal: float) -> None:
    # CPU time is printed too because wall-clock time grows with whatever else the machine runs.
    walls, cpus = measured
    best, median = min(walls), statistics.median(walls)
    verdict = "meets" if median < goal else "misses"
    print(
        f"{label:<26} wall min {best:6.3f} s  median {median:6.3f} s   cpu min {min(cpus):6.3f} s"
        f"  median {statistics.median(cpus):6.3f} s"
        f"   ({verdict} the {goal:.0f} s goal, {len(walls)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--state-url", default=None, help="State store URL; default: SQLite in the project folder.")
    parser.add_argument("--keep", type=Path, default=None, help="Write the project here and keep it.")
    options = parser.parse_args()

    root = options.keep or Path(tempfile.mkdtemp(prefix="personas-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if options.state_url:
        env["PERSONAS_STATE_URL"] = options.state_url
    try:
        write_project(root)
        started = time.perf_counter()
        applied = run(root, "apply", "--auto-approve", env=env)
        if applied.returncode != 0:
            sys.exit(f"apply failed:\n{applied.stderr}")
        print(f"{TRAITS + AUDIENCES + DESTINATIONS} resources in {FILES} files; apply took {time.perf_counter() - started:.2f} s")
        print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")

        report("plan, no file changed", timed(root, options.runs, env, 0), 1.0)
        write_project(root, changed=CHANGED_FILES)
        report(f"plan, {CHANGED_FILES} files changed", timed(root, options.runs, env, 2), 2.0)
        print(f"load average afterwards {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    finally:
        if options.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
