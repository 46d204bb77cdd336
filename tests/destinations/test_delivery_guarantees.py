"""At-least-once delivery with stable keys: killed sync processes and two runs started together."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from .harness import Workspace

ROOT = Path(__file__).resolve().parents[2]

SPECS = """
apiVersion: personas/v1
kind: Audience
metadata: {{name: vip}}
spec:
  include: {{event: Order Completed}}
  destinations:
    - {{destination: crm, identifier: email}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: crm}}
spec:
  type: webhook
  url: "{url}"
  batch_size: {batch_size}
  max_removals: {{share: 100%, at_least: 1000}}
"""


def worker(workspace: Workspace, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.destinations.sync_worker", str(workspace.root), run_id],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def destination_state(deliveries) -> set[str]:
    """Replay acknowledged changes in arrival order, as a receiver applying them would."""
    members: set[str] = set()
    for change in deliveries:
        value = change["identifier"]["value"]
        if change["type"] == "exited":
            members.discard(value)
        else:
            members.add(value)
    return members


def assert_duplicates_share_keys(deliveries) -> None:
    """Per value, two deliveries of the same change type in a row are one change delivered twice: same key."""
    last: dict[str, tuple[str, str]] = {}
    owners: dict[str, tuple[str, str]] = {}
    for change in deliveries:
        value, kind, key = change["identifier"]["value"], change["type"], change["idempotency_key"]
        assert owners.setdefault(key, (kind, value)) == (kind, value), "one key names one change"
        if value in last and last[value][0] == kind:
            assert last[value][1] == key, f"{kind} of {value} delivered again under a new key"
        last[value] = (kind, key)


@pytest.mark.slow
def test_killed_sync_processes_lose_no_change_and_keep_keys(workspace, receiver):
    workspace.write_specs(SPECS.format(url=receiver.url, batch_size=2))
    workspace.apply()
    workspace.prepare()
    rng = random.Random(20240331)
    population = [f"p_{n}" for n in range(1, 121)]
    emails = {subject: f"{subject}@example.com" for subject in population}
    workspace.set_identifiers([(s, "email", e, 1) for s, e in emails.items()])
    receiver.script = [("sleep", 0.02)] * 100_000
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.destinations.sync_worker", str(workspace.root), "--fork-server"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    members = set(rng.sample(population, 60))
    kills = mid_send = 0
    started = time.monotonic()
    try:
        for iteration in range(24):
            # Change the membership and, now and then, an email: exits, entries and identifier changes.
            for subject in rng.sample(population, 30):
                members.symmetric_difference_update({subject})
            if iteration % 3 == 0:
                subject = rng.choice(population)
                emails[subject] = f"{subject}.{iteration}@example.com"
                workspace.set_identifiers([(subject, "email", emails[subject], 2 + iteration)])
            workspace.set_members("vip", sorted(members))

            # Kill at a random point of the pass: planning, queueing, sending or acknowledging.
            server.stdin.write(f"crash-{iteration}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            before = len(receiver.requests)
            time.sleep(rng.uniform(0.3, 1.5))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            done = server.stdout.readline().split()
            if os.WIFSIGNALED(int(done[2])):
                kills += 1
                mid_send += len(receiver.requests) > before
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    final = worker(workspace, "final")
    output, errors = final.communicate(timeout=60)
    assert final.returncode == 0, errors.decode()
    assert kills >= 20, f"only {kills} of 24 passes were killed before they finished"
    assert mid_send >= 5, f"only {mid_send} kills landed after the pass had started sending"
    assert time.monotonic() - started < 90

    deliveries = receiver.acknowledged_changes()
    assert destination_state(deliveries) == {emails[subject] for subject in members}
    assert_duplicates_share_keys(deliveries)
    assert workspace.query("SELECT count(*) FROM personas_sync_outbox") == [(0,)]


def test_two_concurrent_runs_send_each_change_under_one_key(workspace, receiver):
    """The run lock serialises the two runs, so every change is delivered once, under one key."""
    workspace.write_specs(SPECS.format(url=receiver.url, batch_size=7))
    workspace.apply()
    workspace.prepare()
    subjects = [f"p_{n}" for n in range(1, 41)]
    workspace.set_identifiers([(s, "email", f"{s}@example.com", 1) for s in subjects])
    workspace.set_members("vip", subjects)

    first, second = worker(workspace, "a"), worker(workspace, "b")
    outputs = [process.communicate(timeout=60) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), [errors.decode() for _, errors in outputs]

    deliveries = receiver.acknowledged_changes()
    by_change = defaultdict(set)
    for change in deliveries:
        by_change[(change["type"], change["identifier"]["value"])].add(change["idempotency_key"])
    assert len(deliveries) == 40
    assert sorted(by_change) == sorted(("entered", f"{s}@example.com") for s in subjects)
    assert all(len(keys) == 1 for keys in by_change.values())
    sent_counts = sorted(int(out.splitlines()[-1].split()[3]) for out, _ in outputs)
    assert sent_counts == [0, 40]
