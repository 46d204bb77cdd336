"""`personas state ...` and `personas force-unlock`, run as a user runs them."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.state import open_store, records

from .helpers import V1_TABLES, apply, build_version_1_store, change, dump_tables
from .test_locks import HOLDER

APPLIED_AT = datetime(2026, 12, 4, 21, 0, tzinfo=timezone.utc)


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclasses.dataclass
class Project:
    root: Path
    state_url: str
    where: str
    capsys: pytest.CaptureFixture

    def run(self, *args: str) -> Result:
        """Run `personas --project ROOT ARGS` in this process, as the console script does."""
        root_logger = logging.getLogger()
        handlers, level = root_logger.handlers[:], root_logger.level
        self.capsys.readouterr()
        try:
            main(["--project", str(self.root), *args])
        except SystemExit as exit_:
            code = exit_.code
        finally:
            root_logger.handlers[:], root_logger.level = handlers, level
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def project(state_url, tmp_path, capsys, monkeypatch) -> Project:
    """A project whose default `state:` setting points at `state_url` (a relative SQLite file, or the variable)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "personas.yaml").write_text("version: 1\nname: acme\n")
    monkeypatch.setenv("NO_COLOR", "1")
    if state_url.startswith("sqlite"):
        monkeypatch.delenv("PERSONAS_STATE_URL", raising=False)
    else:
        monkeypatch.setenv("PERSONAS_STATE_URL", state_url)
    with open_store(state_url) as store:
        where = store.where
    return Project(root=root, state_url=state_url, where=where, capsys=capsys)


@pytest.fixture
def applied(project) -> Project:
    """The project with audience.vip (renamed from old_vip) and a protected trait applied."""
    with open_store(project.state_url) as store:
        apply(store, change("create", "audience.old_vip", size=1), time=APPLIED_AT)
        trait = dataclasses.replace(change("create", "trait.ltv", window="365d"), protected=True)
        moved = dataclasses.replace(
            change("move", "audience.vip", previous_address="audience.old_vip", size=2), previous_names=["old_vip"]
        )
        apply(store, trait, moved, user="bob", time=APPLIED_AT)
    return project


def test_state_list_of_empty_state(project):
    result = project.run("state", "list")

    assert (result.returncode, result.stdout, result.stderr) == (0, "The state is empty: nothing has been applied yet.\n", "")
    assert not (project.root / ".personas" / "state.db").exists()


def test_state_list_text(applied):
    result = applied.run("state", "list")

    with open_store(applied.state_url) as store:
        lineage = store.read().lineage
    assert result.returncode == 0
    assert result.stdout == (
        "ADDRESS       KIND      VERSION  PROTECTED  APPLIED AT            APPLIED BY\n"
        "audience.vip  Audience  2        no         2026-12-04T21:00:00Z  bob\n"
        "trait.ltv     Trait     1        yes        2026-12-04T21:00:00Z  bob\n"
        "\n"
        f"Serial 2, lineage {lineage}.\n"
    )


def test_state_list_json(applied):
    result = applied.run("state", "list", "--format", "json")

    document = json.loads(result.stdout)
    assert document["serial"] == 2
    assert [(r["address"], r["version"], r["protected"]) for r in document["resources"]] == [
        ("audience.vip", 2, False),
        ("trait.ltv", 1, True),
    ]
    assert document["resources"][0]["applied_at"] == "2026-12-04T21:00:00+00:00"
    assert document["resources"][0]["previous_names"] == ["old_vip"]


def test_state_show_prints_spec_as_yaml(applied):
    result = applied.run("state", "show", "audience.vip")

    with open_store(applied.state_url) as store:
        record = store.read().resources["audience.vip"]
    assert result.returncode == 0
    assert result.stdout == (
        "# audience.vip\n"
        f"id:             {record.id}\n"
        "kind:           Audience\n"
        "version:        2\n"
        "protected:      no\n"
        "source file:    audiences.yaml\n"
        "previous names: old_vip\n"
        "applied at:     2026-12-04T21:00:00Z\n"
        "applied by:     bob\n"
        "\n"
        "apiVersion: personas/v1\n"
        "kind: Audience\n"
        "metadata:\n"
        "  name: vip\n"
        "spec:\n"
        "  size: 2\n"
    )


def test_state_show_json_includes_spec(applied):
    result = applied.run("state", "show", "trait.ltv", "--format", "json")

    document = json.loads(result.stdout)
    assert document["spec"]["spec"] == {"window": "365d"}
    assert document["protected"] is True
    assert len(document["spec_hash"]) == 64


def test_state_show_of_renamed_address_names_new_one(applied):
    result = applied.run("state", "show", "audience.old_vip")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: audience.old_vip is not in the state: it was renamed to audience.vip\n"
        "Run `personas state show audience.vip`.\n"
    )


def test_state_show_of_unknown_address_fails(applied):
    result = applied.run("state", "show", "audience.nope")

    assert result.returncode == 1
    assert result.stderr == (
        "Error: audience.nope is not in the state\nRun `personas state list` to see applied addresses.\n"
    )


def test_state_history_follows_rename(applied):
    result = applied.run("state", "history", "audience.vip")

    assert result.returncode == 0
    assert result.stdout == (
        "SERIAL  ADDRESS           VERSION  ACTION  APPLIED AT            APPLIED BY  NOTE\n"
        "1       audience.old_vip  1        create  2026-12-04T21:00:00Z  alice\n"
        "2       audience.vip      2        move    2026-12-04T21:00:00Z  bob         from audience.old_vip\n"
    )


def test_state_history_json_lists_everything(applied):
    result = applied.run("state", "history", "--format", "json")

    versions = json.loads(result.stdout)
    assert [(v["serial"], v["address"], v["action"]) for v in versions] == [
        (1, "audience.old_vip", "create"),
        (2, "trait.ltv", "create"),
        (2, "audience.vip", "move"),
    ]


def test_old_schema_rejected_until_upgrade(project):
    build_version_1_store(project.state_url)
    rows_before = dump_tables(project.state_url, V1_TABLES)

    rejected = project.run("state", "list")
    upgraded = project.run("state", "upgrade")
    rows_after = dump_tables(project.state_url, V1_TABLES)
    listed = project.run("state", "list")
    again = project.run("state", "upgrade")

    assert rejected.returncode == 1
    assert rejected.stderr.startswith(
        f"Error: the state store at {project.where} has schema version 1; this personas needs 2\n"
        "Run `personas state upgrade`"
    )
    assert (upgraded.returncode, upgraded.stdout) == (
        0,
        f"Upgraded the state store at {project.where} from schema version 1 to 2.\n",
    )
    assert rows_after == rows_before
    assert listed.returncode == 0
    assert "audience.vip  Audience  2" in listed.stdout
    assert again.stdout == f"The state store at {project.where} is already at schema version 2.\n"


def test_upgrade_without_store_does_nothing(project):
    result = project.run("state", "upgrade")

    assert result.returncode == 0
    assert result.stdout == (
        f"There is no state store at {project.where} yet; `personas apply` creates it. Nothing to upgrade.\n"
    )


def test_force_unlock_removes_held_lock(project):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, project.state_url, "sleep"], stdout=subprocess.PIPE, text=True)
    try:
        lock_id = child.stdout.readline().strip()
        result = project.run("force-unlock", lock_id)
    finally:
        child.kill()
        child.wait()

    holder = f"{records.current_user()}@{records.current_host()}"
    pattern = rf"Removed the state lock {lock_id} held by {re.escape(holder)} \(pid {child.pid}, run-test\) since [0-9T:-]+Z\."
    if not project.state_url.startswith("sqlite"):
        pattern += "\nEnded the PostgreSQL session that held it."
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(pattern + "\n", result.stdout)
    with open_store(project.state_url) as store, store.lock(timeout=5):
        pass


def test_force_unlock_of_unknown_id_fails(project):
    with open_store(project.state_url) as store:
        store.initialize()

    result = project.run("force-unlock", "nope")

    assert result.returncode == 1
    assert result.stderr.startswith("Error: no lock with id nope is held\n")


def test_state_output_shows_webhook_url_host_only(project):
    url = "https://hooks.example.com/T0/B1/literalSECRETpath?k=${TOK}"
    with open_store(project.state_url) as store:
        apply(store, change("create", "destination.crm_hook", type="webhook", url=url), time=APPLIED_AT)

    outputs = [
        project.run("state", "show", "destination.crm_hook"),
        project.run("state", "show", "destination.crm_hook", "--format", "json"),
        project.run("state", "history", "destination.crm_hook", "--format", "json"),
    ]

    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert "literalSECRETpath" not in result.stdout
        assert "https://hooks.example.com" in result.stdout


@pytest.mark.parametrize("address", ["trait.*", "nope", "audience.", "audience.vip ", "Audience.vip"])
def test_state_show_rejects_invalid_address(applied, address):
    result = applied.run("state", "show", address)

    assert result.returncode == 1
    assert "is not a valid address" in result.stderr


def test_force_unlock_rejects_empty_id(project):
    result = project.run("force-unlock", "")

    assert result.returncode == 1
    assert "the lock id is empty" in result.stderr
