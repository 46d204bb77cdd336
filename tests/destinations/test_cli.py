"""`personas run` with the removal guard, and `personas syncs list/show`, through the real CLI."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import _run

SPECS = """
apiVersion: personas/v1
kind: Audience
metadata: {{name: vip}}
spec:
  include: {{event: Order Completed}}
  holdout: {holdout}
  destinations:
    - {{destination: crm, identifier: user_id}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: crm}}
spec: {{type: webhook, url: "{url}"}}
"""


class Result:
    def __init__(self, code: int, output: str) -> None:
        self.exit_code, self.output = code, output


def invoke(project: Path, *args: str, code: int = 0) -> Result:
    """Run the CLI in-process with its real exit codes (3 included); output is stdout and stderr."""
    runner = CliRunner()
    with runner.isolation() as streams:
        exit_code = _run(["--project", str(project), *args], debug=False)
        output = streams[0].getvalue().decode() + streams[1].getvalue().decode()
    assert exit_code == code, output
    return Result(exit_code, output)


def make_project(tmp_path: Path, receiver, users: int, holdout: str = "0%") -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "personas.yaml").write_text("version: 1\nname: guard\nas_of: 2024-04-01T00:00:00Z\n")
    (project / "specs.yaml").write_text(textwrap.dedent(SPECS.format(url=receiver.url, holdout=holdout)))
    lines = [
        json.dumps({"type": "track", "messageId": f"m{n}", "userId": f"u_{n:03d}", "event": "Order Completed",
                    "timestamp": "2024-03-01T00:00:00Z"})
        for n in range(1, users + 1)
    ]
    (project / "events.jsonl").write_text("\n".join(lines) + "\n")
    invoke(project, "apply", "--auto-approve")
    invoke(project, "ingest", str(project / "events.jsonl"))
    return project


def empty_events(project: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{project / '.personas' / 'warehouse.duckdb'}")
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM personas_events"))
    engine.dispose()


def test_emptied_source_holds_removals_until_approved(tmp_path, receiver):
    """An emptied event table holds back every exit: exit 3 naming the approval command, which releases exactly that set."""
    project = make_project(tmp_path, receiver, 500)
    invoke(project, "run")
    assert len(receiver.acknowledged_changes()) == 500

    empty_events(project)
    result = invoke(project, "run", code=3)
    assert "500 removals held back" in result.output
    assert "personas run --approve-removals vip:crm" in result.output
    assert len(receiver.acknowledged_changes()) == 500

    invoke(project, "run", "--approve-removals", "vip:crm")
    exits = [c for c in receiver.acknowledged_changes() if c["type"] == "exited"]
    assert sorted(c["identifier"]["value"] for c in exits) == [f"u_{n:03d}" for n in range(1, 501)]
    invoke(project, "run")
    assert len(receiver.acknowledged_changes()) == 1000


def test_syncs_list_and_show_counts(tmp_path, receiver):
    project = make_project(tmp_path, receiver, 12)
    invoke(project, "run")
    empty_events(project)
    held = invoke(project, "run", code=3)
    assert ("sync vip -> crm: held, sent 0; 12 exits held back (removal guard: 12 of 12 members, over 20%); "
            "approve with personas run --approve-removals vip:crm") in held.output.splitlines()

    listed = json.loads(invoke(project, "syncs", "list", "--format", "json").output)
    assert [(r["audience"], r["destination"], r["status"], r["sent"], r["held_back"], r["members"], r["members_sent"])
            for r in listed] == [("vip", "crm", "held", 0, 12, 0, 12)]
    assert listed[0]["match_rate"] is None

    text = invoke(project, "syncs", "list").output
    lines = [re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", line) for line in text.splitlines()]
    assert lines[0].split() == ["AUDIENCE", "DESTINATION", "LAST", "RUN", "STATUS", "SENT", "ACKED", "REJECTED", "HELD", "MATCH",
                                "LAST", "ERROR"]
    assert lines[1].split()[:9] == ["vip", "crm", "TIME", "held", "0", "0", "0", "12", "-"]

    shown = json.loads(invoke(project, "syncs", "show", "vip:crm", "--format", "json").output)
    assert [(r["status"], r["entered"], r["exited"], r["acknowledged"], r["held_back"]) for r in shown["runs"]] == [
        ("held", 0, 12, 0, 12), ("ok", 12, 0, 12, 0)]
    text = invoke(project, "syncs", "show", "vip").output
    assert "match rate                         -" in text
    assert "personas run --approve-removals vip:crm" in text

    result = invoke(project, "syncs", "show", "nobody", code=1)
    assert "no syncs of nobody yet" in result.output


def test_syncs_match_rate_counts_members_sent(tmp_path, receiver):
    project = make_project(tmp_path, receiver, 4)
    invoke(project, "run")
    listed = json.loads(invoke(project, "syncs", "list", "--format", "json").output)
    assert (listed[0]["members"], listed[0]["members_sent"], listed[0]["match_rate"]) == (4, 4, 1.0)


def test_concurrent_runs_send_once(tmp_path, receiver):
    """The run lock makes the second `personas run` wait; the destination gets each change once."""
    import os
    import subprocess
    import sys
    from collections import defaultdict

    project = make_project(tmp_path, receiver, 40)
    command = [str(Path(sys.executable).parent / "personas"), "--project", str(project), "run", "--lock-timeout", "120s"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ)) for _ in range(2)]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err.decode() for _, err in outputs]

    keys = defaultdict(set)
    for change in receiver.acknowledged_changes():
        keys[(change["type"], change["identifier"]["value"])].add(change["idempotency_key"])
    assert len(receiver.acknowledged_changes()) == 40
    assert sorted(keys) == [("entered", f"u_{n:03d}") for n in range(1, 41)]
    assert all(len(found) == 1 for found in keys.values())


def test_rejected_change_exits_3_with_reason(tmp_path, receiver):
    """A 422 for one change: the sync line and `syncs list` name the reason, `syncs show` lists the change."""
    project = make_project(tmp_path, receiver, 3)
    receiver.reject_status, receiver.reject_values = 422, {"u_002"}
    reason = 'HTTP 422: {"error": "invalid identifier", "values": ["u_002"]}'

    result = invoke(project, "run", "--full-resync", "vip:crm", code=3)
    assert (f"sync vip -> crm: rejected, sent 2 (entered 2, exited 0, updated 0); 1 rejected ({reason}); "
            "see them with personas syncs show vip:crm") in result.output.splitlines()

    listed = json.loads(invoke(project, "syncs", "list", "--format", "json").output)
    assert (listed[0]["status"], listed[0]["rejected"]) == ("rejected", 1)
    assert listed[0]["last_error"].startswith(f"1 change rejected, first: {reason}; see them with")
    shown = invoke(project, "syncs", "show", "vip:crm").output.splitlines()
    assert f"    entered  u_002  {reason}" in shown

    # Not sent again while its content is the same: the next run has nothing new to report.
    receiver.reject_values = set()
    result = invoke(project, "run")
    assert "sync vip -> crm: ok, sent 0" in result.output.splitlines()


def test_pending_changes_counted_when_sent(tmp_path, receiver):
    project = make_project(tmp_path, receiver, 3)
    receiver.script = [(429, {"Retry-After": "3600"})]
    result = invoke(project, "run", code=3)
    assert "sync vip -> crm: pending, sent 0; 3 not acknowledged, sent again next run" in result.output.splitlines()

    result = invoke(project, "run")
    assert ("sync vip -> crm: ok, sent 3 (entered 3, exited 0, updated 0; 3 from an earlier run)"
            in result.output.splitlines())


def test_run_output_shows_holdout(tmp_path, receiver):
    project = make_project(tmp_path, receiver, 200, holdout="10%")
    result = invoke(project, "run")
    engine = sa.create_engine(f"duckdb:///{project / '.personas' / 'warehouse.duckdb'}")
    with engine.connect() as connection:
        held_out = connection.execute(sa.text("SELECT count(*) FROM personas_audience_members WHERE holdout")).scalar_one()
    engine.dispose()
    assert 0 < held_out < 200
    kept = 200 - held_out
    row = next(line for line in result.output.splitlines() if line.startswith("audience.vip"))
    assert row.split()[:6] == ["audience.vip", "ok", "200", f"({held_out}", "held", "out)"]
    assert f"sync vip -> crm: ok, sent {kept} (entered {kept}, exited 0, updated 0)" in result.output.splitlines()
    shown = invoke(project, "syncs", "show", "vip:crm").output.splitlines()
    assert f"  members after holdout              {kept}" in shown
    assert f"  members after holdout and consent  {kept}" in shown


def rewrite_specs(project: Path, old: str, new: str) -> None:
    path = project / "specs.yaml"
    path.write_text(path.read_text().replace(old, new))


def test_syncs_follow_renamed_audience(tmp_path, receiver):
    project = make_project(tmp_path, receiver, 2)
    invoke(project, "run")
    rewrite_specs(project, "metadata: {name: vip}", "metadata: {name: top, previous_names: [vip]}")
    invoke(project, "apply", "--auto-approve")
    invoke(project, "run")

    listed = json.loads(invoke(project, "syncs", "list", "--format", "json").output)
    assert [(r["audience"], r["destination"], r["current"]) for r in listed] == [("top", "crm", True)]
    shown = json.loads(invoke(project, "syncs", "show", "top:crm", "--format", "json").output)
    assert [(r["audience"], r["entered"]) for r in shown["runs"]] == [("top", 0), ("top", 2)]
    invoke(project, "syncs", "show", "vip:crm", code=1)


def test_syncs_leave_out_deleted_audience(tmp_path, receiver):
    project = make_project(tmp_path, receiver, 2)
    invoke(project, "run")
    original = (project / "specs.yaml").read_text()
    audience, destination = original.split("---\n")
    (project / "specs.yaml").write_text(destination)
    invoke(project, "apply", "--auto-approve")
    invoke(project, "run")
    (project / "specs.yaml").write_text(original)
    invoke(project, "apply", "--auto-approve")
    invoke(project, "run")

    shown = json.loads(invoke(project, "syncs", "show", "vip:crm", "--format", "json").output)
    assert [(r["entered"], r["exited"]) for r in shown["runs"]] == [(2, 0)]
    listed = json.loads(invoke(project, "syncs", "list", "--format", "json").output)
    assert [(r["audience"], r["current"]) for r in listed] == [("vip", True)]
    everything = invoke(project, "syncs", "list", "--all").output.splitlines()
    assert [line.split()[:3] for line in everything[1:]] == [["vip", "crm", everything[1].split()[2]],
                                                              ["vip", "(deleted)", "crm"]]
