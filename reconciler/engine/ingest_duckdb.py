"""The fast ingest path on DuckDB: DuckDB parses and checks the lines, Python only splits files.

Python reads a file in large blocks (decompressing gzip), and DuckDB splits
each block into lines, parses them as JSON and computes the personas_events
columns in SQL. The SQL check is deliberately narrower than
`messages.parse_message`: a line it does not accept (malformed, or merely
unusual, such as a numeric userId or a timestamp in a rarer ISO 8601 form) is
handed back to Python, which either stores it or quarantines it with the
exact reason. So every accepted row is one Python would store the same way,
and quarantine reasons come from one place.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from reconciler.errors import UsageError

BLOCK_SIZE = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_LINES = "personas_ingest_lines"
_CHECKED = "personas_ingest_checked"

# Times DuckDB and Python read the same way: ISO 8601 with T, optional milli- or
# microseconds, and Z, an offset or no zone (UTC).
_TIME_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?(Z|[+-][01]\d:[0-5]\d)?"

_MACROS = (
    f"""CREATE OR REPLACE TEMP MACRO personas_utc(x) AS CASE WHEN regexp_full_match(x, '{_TIME_PATTERN}') THEN
        TRY_CAST(substr(x, 1, CASE WHEN x[20] = '.' THEN CASE WHEN x[24] IN ('Z', '+', '-', '') THEN 23 ELSE 26 END ELSE 19 END) AS TIMESTAMP)
        - CASE WHEN x[-6] IN ('+', '-') THEN
            (CASE WHEN x[-6] = '-' THEN -1 ELSE 1 END)
            * (CAST(x[-5:-4] AS INTEGER) * 60 + CAST(x[-2:] AS INTEGER)) * INTERVAL 1 MINUTE
          ELSE INTERVAL 0 MINUTE END
        END""",
    # The kind of a JSON value extracted from a message; 'NULL' for absent keys and JSON null.
    """CREATE OR REPLACE TEMP MACRO personas_kind(value) AS coalesce(json_type(value), 'NULL')""",
    """CREATE OR REPLACE TEMP MACRO personas_text(value) AS
        CASE WHEN json_type(value) = 'VARCHAR' THEN json_extract_string(value, '$') END""",
)

# One JSON parse per line: every field the check reads, extracted at once.
_FIELDS = (
    "type", "messageId", "userId", "anonymousId", "groupId", "event",
    "timestamp", "sentAt", "receivedAt", "properties", "traits", "context", "name", "properties.name",
)
_FIELD_PATHS = ", ".join(f"'$.{path}'" for path in _FIELDS)
_AT = {name: index + 1 for index, name in enumerate(_FIELDS)}

_CHECK = f"""
CREATE OR REPLACE TEMP TABLE {_CHECKED} AS
WITH parsed AS MATERIALIZED (
    SELECT line_number, raw,
           CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT' THEN json_extract(raw, [{_FIELD_PATHS}]) END AS v
    FROM {_LINES}
    WHERE NOT regexp_full_match(raw, '[ \\t\\r\\x0b\\x0c]*')
), texts AS MATERIALIZED (
    SELECT line_number, raw, v IS NOT NULL AS is_object,
           personas_text(v[{_AT['type']}]) AS type,
           personas_text(v[{_AT['messageId']}]) AS message_id,
           personas_kind(v[{_AT['userId']}]) AS user_id_kind,
           personas_text(v[{_AT['userId']}]) AS user_id,
           personas_kind(v[{_AT['anonymousId']}]) AS anonymous_id_kind,
           personas_text(v[{_AT['anonymousId']}]) AS anonymous_id,
           personas_kind(v[{_AT['groupId']}]) AS group_id_kind,
           personas_text(v[{_AT['groupId']}]) AS group_id,
           personas_text(v[{_AT['event']}]) AS track_event,
           personas_text(v[{_AT['timestamp']}]) AS timestamp_text,
           personas_kind(v[{_AT['sentAt']}]) AS sent_at_kind,
           personas_text(v[{_AT['sentAt']}]) AS sent_at_text,
           personas_kind(v[{_AT['receivedAt']}]) AS received_at_kind,
           personas_text(v[{_AT['receivedAt']}]) AS received_at_text,
           personas_kind(v[{_AT['properties']}]) AS properties_kind,
           v[{_AT['properties']}] AS properties,
           personas_kind(v[{_AT['traits']}]) AS traits_kind,
           v[{_AT['traits']}] AS traits,
           personas_kind(v[{_AT['context']}]) AS context_kind,
           v[{_AT['context']}] AS context,
           personas_text(v[{_AT['name']}]) AS page_name,
           v[{_AT['properties.name']}] IS NOT NULL AS has_property_name
    FROM parsed
), times AS MATERIALIZED (
    SELECT *,
           personas_utc(timestamp_text) AS original_timestamp,
           personas_utc(sent_at_text) AS sent_at,
           personas_utc(received_at_text) AS received_at
    FROM texts
)
SELECT line_number, raw,
    coalesce(
        is_object
        AND type IN ('track', 'identify', 'page', 'screen', 'group')
        AND regexp_matches(message_id, '[!-~]')
        AND user_id_kind IN ('NULL', 'VARCHAR')
        AND anonymous_id_kind IN ('NULL', 'VARCHAR')
        AND group_id_kind IN ('NULL', 'VARCHAR')
        AND (type = 'group' OR user_id IS NOT NULL OR anonymous_id IS NOT NULL)
        AND (type <> 'group' OR group_id IS NOT NULL)
        AND (type <> 'track' OR regexp_matches(track_event, '[!-~]'))
        AND original_timestamp IS NOT NULL
        AND (sent_at_kind = 'NULL' OR sent_at IS NOT NULL)
        AND (received_at_kind = 'NULL' OR received_at IS NOT NULL)
        AND properties_kind IN ('NULL', 'OBJECT')
        AND traits_kind IN ('NULL', 'OBJECT')
        AND context_kind IN ('NULL', 'OBJECT'),
        false) AS accepted,
    message_id,
    type,
    CASE type WHEN 'track' THEN track_event WHEN 'page' THEN 'Page Viewed' WHEN 'screen' THEN 'Screen Viewed' END AS event,
    user_id, anonymous_id, group_id,
    CASE WHEN sent_at IS NOT NULL AND received_at IS NOT NULL
         THEN received_at - (sent_at - original_timestamp) ELSE original_timestamp END AS timestamp,
    original_timestamp, sent_at, received_at,
    CASE WHEN type IN ('page', 'screen') AND page_name IS NOT NULL AND NOT has_property_name
         THEN json_merge_patch(CASE WHEN properties_kind = 'OBJECT' THEN properties ELSE '{{}}'::JSON END, json_object('name', page_name))
         WHEN properties_kind = 'OBJECT' THEN properties END AS properties,
    CASE WHEN traits_kind = 'OBJECT' THEN traits END AS traits,
    CASE WHEN context_kind = 'OBJECT' THEN context END AS context,
    md5(raw) AS line_hash
FROM times
"""

LineHandler = Callable[[Path, int, bytes], None]
BlockStore = Callable[[str, int], None]


def stage_file(
    scratch: sa.Connection,
    path: Path,
    columns: list[str],
    store: BlockStore,
    handle_line: LineHandler,
    progress: Callable[[int], None] | None,
    *,
    commit: bool = True,
) -> int:
    """Hand the lines DuckDB accepts to `store`, block by block; pass the others to `handle_line`.

    Return how many lines DuckDB accepted. Lines are split and checked on
    `scratch`, a connection of its own that commits after each block, so its
    working tables do not pile up in the ingest's transaction until it ends.
    Each block's accepted rows (`columns`) are written to a Parquet file in a
    temporary folder, and `store(relation, rows)` takes them from there
    (`relation` is SQL reading that file, `rows` how many it holds). With
    `commit` false, `scratch` is the ingest's own connection and never commits.
    """
    done = scratch.commit if commit else _nothing
    for macro in _MACROS:
        scratch.execute(sa.text(macro))
    scratch.execute(sa.text(f"CREATE OR REPLACE TEMP TABLE {_LINES} (line_number BIGINT, raw VARCHAR)"))
    done()
    accepted = 0
    first_line = 1
    with tempfile.TemporaryDirectory(prefix="personas-ingest-") as folder:
        block_file = str(Path(folder) / "block.parquet").replace("'", "''")
        for block in _blocks(path, progress):
            text = _decode_block(path, block, first_line, handle_line)
            rows = _stage_block(scratch, text, first_line, path, handle_line, columns, block_file)
            done()
            store(f"read_parquet('{block_file}')", rows)
            accepted += rows
            first_line += block.count(b"\n")
    scratch.execute(sa.text(f"DROP TABLE IF EXISTS {_LINES}"))
    scratch.execute(sa.text(f"DROP TABLE IF EXISTS {_CHECKED}"))
    done()
    return accepted


def _stage_block(
    scratch: sa.Connection, text: str, first_line: int, path: Path, handle_line: LineHandler, columns: list[str], block_file: str
) -> int:
    """Check one block of lines; write the accepted rows to `block_file` and return how many there are."""
    scratch.execute(sa.text(f"DELETE FROM {_LINES}"))
    scratch.execute(
        sa.text(
            f"INSERT INTO {_LINES} SELECT :first + n - 1, rtrim(raw, chr(13)) FROM "
            "(SELECT unnest(lines) AS raw, unnest(range(1, len(lines) + 1)) AS n FROM (SELECT string_split(:text, chr(10)) AS lines))"
        ),
        {"first": first_line, "text": text},
    )
    scratch.execute(sa.text(_CHECK))
    listed = ", ".join(columns)
    scratch.execute(sa.text(f"COPY (SELECT {listed} FROM {_CHECKED} WHERE accepted) TO '{block_file}' (FORMAT parquet)"))
    accepted = scratch.execute(sa.text(f"SELECT count(*) FROM {_CHECKED} WHERE accepted")).scalar_one()
    rejected = scratch.execute(sa.text(f"SELECT line_number, raw FROM {_CHECKED} WHERE NOT accepted ORDER BY line_number")).all()
    for line_number, raw in rejected:
        handle_line(path, line_number, raw.encode("utf-8"))
    return accepted


def _nothing() -> None:
    pass


def _decode_block(path: Path, block: bytes, first_line: int, handle_line: LineHandler) -> str:
    """Decode a block; lines that are not UTF-8 go to `handle_line` and become blank here."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = []
    for offset, line in enumerate(block.split(b"\n")):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            handle_line(path, first_line + offset, line.rstrip(b"\r"))
            lines.append("")
    return "\n".join(lines)


def _blocks(path: Path, progress: Callable[[int], None] | None):
    """Blocks of whole lines (the last may lack its newline), about BLOCK_SIZE bytes each."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw
        carry = b""
        reported = 0
        first = True
        try:
            while True:
                data = stream.read(BLOCK_SIZE)
                if first:
                    data = data.removeprefix(_UTF8_BOM)
                    first = False
                if progress is not None and raw.tell() > reported:
                    progress(raw.tell() - reported)
                    reported = raw.tell()
                if not data:
                    break
                data = carry + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                yield data[: cut + 1]
        except (OSError, EOFError) as error:
            raise UsageError(
                f"cannot read {path}: {error}; nothing from this ingest was stored",
                hint="Check that the file is complete JSON Lines, plain or gzip.",
            ) from None
        if carry:
            yield carry
