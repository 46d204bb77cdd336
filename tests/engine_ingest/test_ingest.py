"""Ingest on DuckDB and PostgreSQL: deduplication, quarantine, times, gzip, suppression."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.engine.identity import suppression_text
from reconciler.engine.warehouse import open_warehouse
from reconciler.errors import UsageError
from reconciler.spec.settings import ProjectSettings

from .conftest import ProjectForTests, ingest, message, query, write_jsonl


def stored_ids(project) -> list[str]:
    return [row[0] for row in query(project, lambda wh: sa.select(layout.events.c.message_id).order_by("message_id"))]


def test_batch_stores_new_messages_once(project, tmp_path):
    first = write_jsonl(tmp_path / "first.jsonl", [message("track", "m_old", userId="u_1", event="Signed Up")])
    ingest(project, first)
    batch = write_jsonl(
        tmp_path / "batch.jsonl",
        [
            message("track", "m_old", userId="u_1", event="Signed Up"),
            message("track", "m_new_1", userId="u_1", event="Order Completed"),
            message("track", "m_new_2", userId="u_1", event="Order Completed"),
            message("track", "m_new_2", userId="u_1", event="Order Completed"),
        ],
    )

    summary = ingest(project, batch)

    assert (summary.read, summary.stored, summary.duplicates, summary.quarantined) == (4, 2, 2, 0)
    assert stored_ids(project) == ["m_new_1", "m_new_2", "m_old"]


def test_same_file_again_stores_nothing(project, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [message("identify", f"m{n}", userId=f"u{n}") for n in range(5)])
    ingest(project, path)

    again = ingest(project, path)

    assert (again.read, again.stored, again.duplicates) == (5, 0, 5)
    assert again.batch_seq == 2
    assert len(stored_ids(project)) == 5


def test_repeated_message_id_keeps_same_copy(make_project, tmp_path):
    copies = [
        message("track", "dup", userId="u_1", event="A"),
        message("track", "dup", userId="u_1", event="B"),
    ]
    project = make_project()
    ingest(project, write_jsonl(tmp_path / "ab.jsonl", copies))
    kept = query(project, lambda wh: sa.select(layout.events.c.event))

    reversed_project = make_project(warehouse=f"duckdb:///{tmp_path}/reversed.duckdb")
    ingest(reversed_project, write_jsonl(tmp_path / "ba.jsonl", copies[::-1]))
    kept_reversed = query(reversed_project, lambda wh: sa.select(layout.events.c.event))

    assert kept == kept_reversed
    assert len(kept) == 1



def test_copies_across_blocks_keep_lowest_hash(tmp_path, monkeypatch):
    from reconciler.engine import ingest_duckdb

    monkeypatch.setattr(ingest_duckdb, "BLOCK_SIZE", 997)  # a block holds about ten lines
    copies = [
        message("track", "dup", userId="u_1", event="A"),
        message("track", "dup", userId="u_1", event="B"),
        message("track", "dup", userId=7, event="C"),  # a numeric userId: checked in Python
    ]
    lines = [json.dumps(copy) for copy in copies]
    lowest = min(lines, key=lambda line: hashlib.md5(line.encode()).hexdigest())
    filler = [message("track", f"f{n:02d}", userId="u_2", event="F") for n in range(30)]
    for order, copies_in_order in (("abc", copies), ("cba", copies[::-1])):
        first, second, third = copies_in_order
        settings = ProjectSettings.model_validate({"version": 1, "name": "test", "warehouse": f"duckdb:///{tmp_path}/{order}.duckdb"})
        project = ProjectForTests(root=tmp_path, settings=settings)
        path = write_jsonl(tmp_path / f"{order}.jsonl", [first, *filler[:15], second, *filler[15:], third])

        summary = ingest(project, path)

        assert (summary.read, summary.stored, summary.duplicates) == (33, 31, 2)
        kept = query(project, lambda wh: sa.select(layout.events.c.event).where(layout.events.c.message_id == "dup"))
        assert kept == [(json.loads(lowest)["event"],)]

    later = ingest(project, write_jsonl(tmp_path / "later.jsonl", [message("track", "dup", userId="u_1", event="D")]))

    assert (later.stored, later.duplicates) == (0, 1)
    assert query(project, lambda wh: sa.select(layout.events.c.event).where(layout.events.c.message_id == "dup")) == kept


MALFORMED = [
    ("not json", "invalid JSON: Expecting value at column 1"),
    ("[1, 2]", "not a JSON object but an array"),
    ({"messageId": "q1", "timestamp": "2024-01-01T00:00:00Z", "userId": "u"}, "missing type"),
    (
        {"type": "bogus", "messageId": "q2", "timestamp": "2024-01-01T00:00:00Z"},
        "unknown type 'bogus'; expected one of track, identify, page, screen, group, alias",
    ),
    ({"type": "identify", "timestamp": "2024-01-01T00:00:00Z", "userId": "u"}, "missing messageId"),
    ({"type": "identify", "messageId": 5, "timestamp": "2024-01-01T00:00:00Z", "userId": "u"}, "messageId is not a non-empty string"),
    (message("track", "q3", userId="u"), "track call without an event name"),
    (message("identify", "q4", traits={"email": "x@y.z"}), "identify call without userId or anonymousId"),
    (message("group", "q5", userId="u"), "group call without groupId"),
    (message("track", "q6", "yesterday", userId="u", event="E"), "timestamp 'yesterday' is not an ISO 8601 timestamp"),
    (message("track", "q7", userId="u", event="E", properties=[1]), "properties is an array, not an object"),
    (message("identify", "q8", userId=True), "userId is a boolean, not a string"),
    (message("identify", "q8f", userId=1.5), "userId is a number with a fraction; ids must be strings or whole numbers"),
    ({"type": "identify", "messageId": "q9", "userId": "u"}, "missing timestamp (and no originalTimestamp or receivedAt to take it from)"),
    (message("track", "q10", userId="u", event="E", sentAt="soon"), "sentAt 'soon' is not an ISO 8601 timestamp"),
]


def test_malformed_lines_quarantined_with_reason(project, tmp_path):
    lines = [line for line, _ in MALFORMED] + [message("track", "good", userId="u", event="E"), "   "]
    path = write_jsonl(tmp_path / "mixed.jsonl", lines)

    summary = ingest(project, path)

    assert (summary.read, summary.stored, summary.quarantined) == (len(MALFORMED) + 1, 1, len(MALFORMED))
    rows = query(
        project,
        lambda wh: sa.select(layout.quarantine.c.line_number, layout.quarantine.c.reason, layout.quarantine.c.raw_line)
        .order_by(layout.quarantine.c.line_number),
    )
    expected = [
        (number, reason, line if isinstance(line, str) else json.dumps(line))
        for number, (line, reason) in enumerate(MALFORMED, start=1)
    ]
    assert rows == expected
    assert stored_ids(project) == ["good"]


def test_unusual_valid_messages_stored(project, tmp_path):
    path = write_jsonl(
        tmp_path / "unusual.jsonl",
        [
            message("identify", "numeric", userId=42),
            message("track", "spaced", "2024-01-01 10:00:00+00:00", userId="u", event="E"),
            message("alias", "alias", userId="u_new", previousId="a_old"),
            message("page", "page", anonymousId="a", name="Pricing", properties={"path": "/pricing"}),
        ],
    )

    summary = ingest(project, path)

    assert (summary.stored, summary.quarantined) == (4, 0)
    rows = dict(
        (row[0], row[1:])
        for row in query(
            project,
            lambda wh: sa.select(
                layout.events.c.message_id, layout.events.c.user_id, layout.events.c.event, layout.events.c.timestamp,
                layout.events.c.properties,
            ),
        )
    )
    assert rows["numeric"][0] == "42"
    assert rows["spaced"][2] == datetime(2024, 1, 1, 10, 0)
    assert rows["alias"][3] == {"previousId": "a_old"}
    assert rows["page"][1:] == ("Page Viewed", datetime(2024, 1, 1), {"path": "/pricing", "name": "Pricing"})


def test_times_utc_and_skew_corrected(project, tmp_path):
    path = write_jsonl(
        tmp_path / "times.jsonl",
        [
            message("track", "offset", "2024-03-01T12:00:00+02:00", userId="u", event="E"),
            message("track", "naive", "2024-03-01T12:00:00", userId="u", event="E"),
            # The device clock runs 5 minutes fast: it sent at 10:05 what the server received at 10:00:30.
            message(
                "track", "skewed", "2024-03-01T10:00:00.250Z", userId="u", event="E",
                sentAt="2024-03-01T10:05:00Z", receivedAt="2024-03-01T10:00:30Z",
            ),
            message("track", "received_only", "2024-03-01T10:00:00Z", userId="u", event="E", receivedAt="2024-03-01T10:00:30Z"),
        ],
    )

    ingest(project, path)

    rows = {
        row[0]: row[1:]
        for row in query(
            project,
            lambda wh: sa.select(layout.events.c.message_id, layout.events.c.timestamp, layout.events.c.original_timestamp),
        )
    }
    assert rows["offset"] == (datetime(2024, 3, 1, 10, 0), datetime(2024, 3, 1, 10, 0))
    assert rows["naive"] == (datetime(2024, 3, 1, 12, 0), datetime(2024, 3, 1, 12, 0))
    assert rows["skewed"] == (datetime(2024, 3, 1, 9, 55, 30, 250000), datetime(2024, 3, 1, 10, 0, 0, 250000))
    assert rows["received_only"] == (datetime(2024, 3, 1, 10, 0), datetime(2024, 3, 1, 10, 0))


def test_gzip_detected_by_content(project, tmp_path):
    messages = [message("identify", f"g{n}", userId=f"u{n}") for n in range(3)]
    plain = write_jsonl(tmp_path / "plain.jsonl.gz", messages[:1])  # a misleading name, plain text inside
    packed = write_jsonl(tmp_path / "packed.jsonl", messages[1:], compress=True)

    summary = ingest(project, plain, packed)

    assert (summary.read, summary.stored, summary.quarantined) == (3, 3, 0)


def test_suppressed_identifier_drops_message(project, tmp_path):
    key = b"test key"

    def digest(text: str) -> str:
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
        with warehouse.engine.begin() as connection:
            connection.execute(
                layout.suppressions.insert().values(
                    identifier_hmac=digest(suppression_text("email", "gone@example.com")), suppressed_at=datetime(2024, 1, 1)
                )
            )
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            message("identify", "kept", userId="u_1", traits={"email": "kept@example.com"}),
            message("identify", "dropped", userId="u_2", traits={"email": " Gone@Example.com "}),
        ],
    )

    summary = ingest(project, path, digest=digest)

    assert (summary.read, summary.stored, summary.suppressed) == (2, 1, 1)
    assert stored_ids(project) == ["kept"]


def test_batch_recorded_with_counts(project, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [message("identify", "m1", userId="u"), "oops"])

    ingest(project, path)

    rows = query(
        project,
        lambda wh: sa.select(
            layout.ingest_batches.c.seq, layout.ingest_batches.c.read, layout.ingest_batches.c.stored,
            layout.ingest_batches.c.quarantined, layout.ingest_batches.c.files,
        ),
    )
    assert rows == [(1, 2, 1, 1, [str(path)])]


def test_chunked_load_keeps_line_numbers(project, tmp_path, monkeypatch):
    from reconciler.engine import ingest_duckdb

    monkeypatch.setattr(ingest_duckdb, "BLOCK_SIZE", 997)  # blocks end mid-line
    messages = [message("track", f"m{n:05d}", userId=f"u{n % 7}", event="E") for n in range(1200)]
    path = write_jsonl(tmp_path / "big.jsonl", messages[:600] + ["bad line"] + messages[600:], compress=True)

    with open_warehouse(project) as warehouse:
        from reconciler.engine.ingest import ingest_files

        summary = ingest_files(warehouse, [path], chunk_size=100)

    assert (summary.read, summary.stored, summary.quarantined) == (1201, 1200, 1)
    assert summary.resolution.profiles_created == 7
    assert query(project, lambda wh: sa.select(layout.quarantine.c.line_number)) == [(601,)]


def test_truncated_gzip_stores_nothing(project, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [message("identify", "m1", userId="u_1")])
    packed = write_jsonl(tmp_path / "cut.jsonl.gz", [message("identify", f"c{n}", userId="u") for n in range(50)], compress=True)
    packed.write_bytes(packed.read_bytes()[:-30])

    with pytest.raises(UsageError) as raised:
        ingest(project, good, packed)

    assert raised.value.message.startswith(f"cannot read {packed}: ")
    assert raised.value.message.endswith("; nothing from this ingest was stored")
    assert stored_ids(project) == []



def test_failed_ingest_in_memory_duckdb_stores_nothing(tmp_path, monkeypatch):
    from reconciler.engine import ingest_duckdb
    from reconciler.engine.ingest import ingest_files

    monkeypatch.setattr(ingest_duckdb, "BLOCK_SIZE", 997)  # several blocks before the file breaks
    settings = ProjectSettings.model_validate({"version": 1, "name": "test", "warehouse": "duckdb:///:memory:"})
    project = ProjectForTests(root=tmp_path, settings=settings)
    good = write_jsonl(tmp_path / "good.jsonl", [message("identify", f"g{n}", userId="u") for n in range(40)])
    packed = write_jsonl(tmp_path / "cut.jsonl.gz", [message("identify", f"c{n}", userId="u") for n in range(400)], compress=True)
    packed.write_bytes(packed.read_bytes()[:-30])

    with open_warehouse(project) as warehouse:
        with pytest.raises(UsageError):
            ingest_files(warehouse, [good, packed])
        with warehouse.engine.connect() as connection:
            stored = connection.execute(sa.select(sa.func.count()).select_from(layout.events)).scalar_one()
        summary = ingest_files(warehouse, [good], resolve_identities=False)

    assert stored == 0
    assert (summary.read, summary.stored) == (40, 40)


def test_empty_and_blank_files_read_nothing(project, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n  \r\n\t\n")

    summary = ingest(project, empty, blank)

    assert (summary.read, summary.stored, summary.quarantined) == (0, 0, 0)


def test_byte_order_mark_is_ignored(project, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(message("identify", "m1", userId="u_1")).encode() + b"\r\n")

    summary = ingest(project, path)

    assert (summary.read, summary.stored, summary.quarantined) == (1, 1, 0)
