"""`personas ingest` and `personas profile show`, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import message, write_jsonl

PERSONAS = str(Path(sys.executable).parent / "personas")


def make_project_folder(folder: Path, warehouse_url: str, identity: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "personas.yaml").write_text(f"version: 1\nname: cli_test\nwarehouse: {warehouse_url}\n{identity}", encoding="utf-8")
    return folder


def personas(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PERSONAS, "--project", str(folder), *args], capture_output=True, text=True, timeout=120, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
    )


@pytest.fixture
def folder(tmp_path, duckdb_url) -> Path:
    """A project on DuckDB: the commands' output does not depend on the warehouse."""
    return make_project_folder(tmp_path / "project", duckdb_url)


SAMPLE = [
    message("identify", "m1", "2024-01-01T00:00:00Z", userId="u_1", anonymousId="a-1", traits={"email": "Jane@Example.com"}),
    message("track", "m2", "2024-01-02T00:00:00Z", anonymousId="a-1", event="Order Completed"),
    message("identify", "m3", "2024-01-03T00:00:00Z", userId="u_2", anonymousId="a-1"),
    message("identify", "m3", "2024-01-03T00:00:00Z", userId="u_2", anonymousId="a-1"),
    "{broken",
]


def test_ingest_prints_counts_and_resolution(tmp_path, warehouse_url):
    folder = make_project_folder(tmp_path / "project", warehouse_url)
    path = write_jsonl(tmp_path / "sample.jsonl", SAMPLE)

    first = personas(folder, "ingest", str(path))
    second = personas(folder, "ingest", str(path), "--no-resolve")

    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        "Ingested 1 file as batch 1:\n"
        "  read         5\n"
        "  stored       3\n"
        "  duplicates   1\n"
        "  quarantined  1\n"
        "  suppressed   0\n"
        "               1  invalid JSON: Expecting property name enclosed in double quotes at column 2\n"
        "Quarantined lines are kept with their reason in the personas_quarantine table.\n"
        "Identity resolution: 3 messages, 2 profiles created, 0 merges, 1 merge refused, "
        "0 messages without a usable identifier.\n"
    )
    assert first.stderr == ""
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[:4] == ["Ingested 1 file as batch 2:", "  read         5", "  stored       0", "  duplicates   4"]
    assert second.stdout.splitlines()[-1] == (
        "Identity resolution skipped (--no-resolve): the next ingest or run resolves these messages."
    )


def test_ingest_missing_file_fails(folder):
    result = personas(folder, "ingest", str(folder / "missing.jsonl"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "missing.jsonl' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_concurrent_processes_store_once(tmp_path, postgres_url):
    folder = make_project_folder(tmp_path / "project", postgres_url)
    messages = [message("track", f"m{n:05d}", userId=f"u{n % 50}", event="E") for n in range(2000)]
    path = write_jsonl(tmp_path / "same.jsonl", messages)
    personas(folder, "ingest", str(write_jsonl(tmp_path / "setup.jsonl", messages[:1])))  # creates the tables

    runs = [
        subprocess.Popen(
            [PERSONAS, "--project", str(folder), "ingest", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    stored = [int(line.split()[1].replace(",", "")) for out, _ in outputs for line in out.splitlines() if line.startswith("  stored")]
    assert sum(stored) == 1999
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        counts = connection.execute(
            sa.text("SELECT count(*), count(DISTINCT message_id) FROM personas_events")
        ).one()
        profiles = connection.execute(sa.text("SELECT count(*) FROM personas_profiles WHERE merged_into IS NULL")).scalar()
        unresolved = connection.execute(
            sa.text("SELECT count(*) FROM personas_events e WHERE NOT EXISTS (SELECT 1 FROM personas_message_profiles m WHERE m.message_id = e.message_id)")
        ).scalar()
    engine.dispose()
    assert tuple(counts) == (2000, 2000)
    assert (profiles, unresolved) == (50, 0)


def test_profile_show_finds_by_any_identifier(folder, tmp_path):
    personas(folder, "ingest", str(write_jsonl(tmp_path / "sample.jsonl", SAMPLE)))

    by_user = personas(folder, "profile", "show", "u_1")
    by_email = personas(folder, "profile", "show", " JANE@example.com", "--format", "json")

    assert by_user.returncode == 0, by_user.stderr
    lines = by_user.stdout.splitlines()
    assert lines[0].startswith("Profile p_")
    assert lines[1:] == [
        "  first seen  2024-01-01T00:00:00Z",
        "",
        "Identifiers:",
        "  anonymous_id   a-1  (seen 2024-01-01T00:00:00Z .. 2024-01-02T00:00:00Z)",
        "  email          jane@example.com  (seen 2024-01-01T00:00:00Z .. 2024-01-01T00:00:00Z)",
        "  user_id        u_1  (seen 2024-01-01T00:00:00Z .. 2024-01-01T00:00:00Z)",
        "",
        "Merges:",
        "  refused: user_id limit 1 would be exceeded; dropped anonymous_id 'a-1' from the message "
        "(user_id=u_2, anonymous_id=a-1; at 2024-01-03T00:00:00Z, message m3)",
        "",
        "Traits:",
        "  none computed yet (run `personas run`)",
        "",
        "Audiences:",
        "  none computed yet (run `personas run`)",
    ]
    assert by_email.returncode == 0, by_email.stderr
    details = json.loads(by_email.stdout)
    assert details["profile_id"] == lines[0].split()[1]
    assert [item["type"] for item in details["identifiers"]] == ["anonymous_id", "email", "user_id"]
    assert details["first_seen"] == "2024-01-01T00:00:00Z"
    assert details["identifiers"][0]["last_seen"] == "2024-01-02T00:00:00Z"
    assert details["merges"][0]["message_timestamp"] == "2024-01-03T00:00:00Z"


def test_profile_show_ambiguous_value_asks_type(folder, tmp_path):
    messages = [message("identify", "m1", userId="same"), message("identify", "m2", userId="other", anonymousId="same")]
    personas(folder, "ingest", str(write_jsonl(tmp_path / "a.jsonl", messages)))

    ambiguous = personas(folder, "profile", "show", "same")
    chosen = personas(folder, "profile", "show", "same", "--type", "anonymous_id")

    assert ambiguous.returncode == 1
    assert ambiguous.stderr == (
        "Error: 'same' is an identifier of several types: anonymous_id, user_id\nChoose one with --type TYPE.\n"
    )
    assert chosen.returncode == 0, chosen.stderr


def test_profile_show_unknown_identifier_fails(folder):
    result = personas(folder, "profile", "show", "nobody@example.com")

    assert result.returncode == 1
    assert result.stderr == (
        "Error: no profile has the identifier 'nobody@example.com'\n"
        "Check the value (it is matched after normalisation, so emails ignore case), or ingest its messages first.\n"
    )


def test_ingest_resolves_with_applied_rules(folder, tmp_path):
    path = write_jsonl(tmp_path / "sample.jsonl", SAMPLE)
    assert personas(folder, "apply", "--auto-approve").returncode == 0
    personas(folder, "ingest", str(path))
    settings = folder / "personas.yaml"
    settings.write_text(settings.read_text() + 'identity:\n  blocked_values: ["", "a-1"]\n', encoding="utf-8")

    unapplied = personas(folder, "ingest", str(path))
    assert personas(folder, "apply", "--auto-approve").returncode == 0
    applied = personas(folder, "ingest", str(path))

    assert unapplied.stdout.splitlines()[-1].startswith("Identity resolution: 0 messages")
    assert applied.stdout.splitlines()[-1] == (
        "Identity resolution (full: the identity rules changed): 3 messages, 2 profiles created, 0 merges, "
        "0 merges refused, 1 message without a usable identifier."
    )
