"""Identity resolution: linking messages into profiles by their identifiers.

Each message's identifier values are read from the fields of the identity
rules, normalised, and dropped when blocked. Messages are resolved in order:
ingest batches (or, for `sources:` tables, load times) in the order they
arrived, and within one by (timestamp, messageId). A set of values that
matches no profile creates one; a set matching several merges them into the
oldest. When the merged profile would hold more values of a type than its
`limit`, the message's lowest-priority value is dropped and matching retried;
the refusal is recorded in personas_merges.

Resolution is incremental: only messages without a row in
personas_message_profiles are read, past merges are never re-decided. When
the rules' hash differs from the one recorded in personas_identity_state,
everything is resolved again from scratch. The warehouse groups the
unresolved messages by identifier set (identity_sets.py); Python resolves
the sets in order, keeping only a map from identifier value to profile in
memory, and results are written back in bulk in one transaction.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from reconciler.engine import identity_sets, layout
from reconciler.engine.bulk import create_temp_table, load_rows
from reconciler.engine.identity_sets import IdentifierSet, Occurrence
from reconciler.errors import WarehouseError
from reconciler.spec.diagnostics import plural

if TYPE_CHECKING:
    from reconciler.engine.warehouse import Warehouse
    from reconciler.spec.settings import IdentityRules

log = logging.getLogger(__name__)

# Columns of the events relation a rule field may name, by the message field it holds.
_TOP_LEVEL_FIELDS = {
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "groupId": "group_id",
    "messageId": "message_id",
    "event": "event",
}
_JSON_FIELDS = ("traits", "context", "properties")
_POSTGRES_LOCK_KEY = 0x70657273_6F6E6173 % (2**63)  # "personas": one identity resolution at a time
_NORMALIZED_CACHE_SIZE = 1_000_000

Pair = tuple[int, str]  # (index of the identifier rule, normalised value)


def suppression_text(identifier_type: str, value: str) -> str:
    """Return the text whose keyed HMAC personas_suppressions stores for an erased identifier value."""
    return f"{identifier_type}:{value}"


def rules_hash(rules: IdentityRules) -> str:
    """Hash the identity rules with defaults filled in. A changed hash means a full re-resolution."""
    canonical = {
        "identifiers": [
            {"type": rule.type, "limit": rule.limit, "normalize": rule.normalization, "from": rule.fields}
            for rule in rules.identifiers
        ],
        "blocked_values": sorted(rules.blocked_values),
        "blocked_patterns": sorted(rules.blocked_patterns),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def profile_id_for(message_id: str) -> str:
    """Return the id of the profile a message creates, stable across runs, re-ingests and re-resolution."""
    return "p_" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:20]


_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "none": lambda value: value,
    "trim": str.strip,
    "lowercase": lambda value: value.strip().lower(),
    "email": lambda value: value.strip().lower(),
}


class IdentifierExtractor:
    """Extractor of a message's identifier values, as the rules define them: normalised, blocked values dropped."""

    def __init__(self, rules: IdentityRules) -> None:
        self.rules = rules
        self.types = [rule.type for rule in rules.identifiers]
        self.limits = [rule.limit for rule in rules.identifiers]
        self._normalizers = [_NORMALIZERS[rule.normalization] for rule in rules.identifiers]
        self._blocked = set(rules.blocked_values)
        self._patterns = [re.compile(pattern) for pattern in rules.blocked_patterns]
        # (rule index, dotted path) for every field, in priority order.
        self.fields = [(index, path) for index, rule in enumerate(rules.identifiers) for path in rule.fields]
        self._field_indexes = [index for index, _ in self.fields]
        # Normalised text by (rule index, raw text): the same ids recur across many messages.
        self._normalized: dict[tuple[int, str], str | None] = {}

    def normalize(self, index: int, value: Any) -> str | None:
        """Return the normalised text of a value, or None when it is missing, not text, or blocked."""
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            return None
        text = self._normalizers[index](value)
        if text in self._blocked or any(pattern.search(text) for pattern in self._patterns):
            return None
        return text

    def pairs(self, values: Sequence[Any]) -> list[Pair]:
        """Return distinct (rule index, value) pairs from raw values aligned with `fields`, by priority."""
        pairs: list[Pair] = []
        cache = self._normalized
        for index, raw in zip(self._field_indexes, values):
            if raw is None:
                continue
            key = (index, raw)
            if key in cache:
                text = cache[key]
            else:
                text = self.normalize(index, raw)
                if len(cache) >= _NORMALIZED_CACHE_SIZE:
                    cache.clear()
                cache[key] = text
            if text is not None and (index, text) not in pairs:
                pairs.append((index, text))
        return pairs

    def from_message(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        """Return the (type, value) pairs of a raw Segment message, as ingest reads it."""
        values = [_walk(message, path.split(".")) for _, path in self.fields]
        return [(self.types[index], value) for index, value in self.pairs(values)]


def _walk(message: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(message, dict):
            return None
        message = message.get(key)
    return message


def field_expression(raw: sa.Subquery, path: str, dialect: str) -> sa.ColumnElement[Any]:
    """SQL reading one dotted message field (userId, traits.email, ...) as text from raw events."""
    head, _, rest = path.partition(".")
    if not rest and head in _TOP_LEVEL_FIELDS:
        return raw.c[_TOP_LEVEL_FIELDS[head]]
    if rest and head in _JSON_FIELDS:
        return json_text(raw.c[head], rest.split("."), dialect)
    raise WarehouseError(
        f"identity rules read the message field {path!r}, which personas does not store",
        hint="Use userId, anonymousId, groupId, or a path below traits., context. or properties. in `identity.identifiers[].from`.",
    )


def json_text(column: sa.ColumnElement[Any], keys: list[str], dialect: str) -> sa.ColumnElement[Any]:
    """Return SQL reading the text at a key path inside a JSON column (NULL when absent)."""
    if dialect == "postgresql":
        return sa.func.jsonb_extract_path_text(column, *[sa.literal(key) for key in keys])
    quoted = ".".join('"' + key.replace('"', '\\"') + '"' for key in keys)
    if dialect == "duckdb":
        return sa.func.json_extract_string(column, sa.literal(f"$.{quoted}"))
    return sa.func.json_value(column, sa.literal(f"$.{quoted}"))


@dataclass
class ResolveSummary:
    """Counts of one identity resolution."""

    full: bool
    messages: int = 0
    profiles_created: int = 0
    merges: int = 0
    refused_merges: int = 0
    unlinked: int = 0  # messages without any usable identifier


@dataclass(slots=True)
class _Profile:
    seq: int
    values: dict[int, set[str]] = field(default_factory=dict)


def resolve(warehouse: Warehouse, rules: IdentityRules, *, full: bool = False) -> ResolveSummary:
    """Resolve messages not yet resolved (all of them when `full` or when the rules changed)."""
    warehouse.ensure_schema()
    extractor = IdentifierExtractor(rules)
    current_hash = rules_hash(rules)
    with warehouse.engine.connect() as writer:
        with writer.begin():
            if warehouse.dialect == "postgresql":
                writer.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY})
            recorded = writer.execute(sa.select(layout.identity_state.c.rules_hash)).scalar_one_or_none()
            full = full or (recorded is not None and recorded != current_hash)
            if full:
                _clear(writer)
            raw = warehouse.raw_events()
            fields = [field_expression(raw, path, warehouse.dialect) for _, path in extractor.fields]
            last_load_order = identity_sets.stage_unresolved(writer, warehouse, fields, raw, full)
            identity_sets.stage_sets(writer, len(fields))
            resolver = _resolve_sets(extractor, writer, identity_sets.read_sets(writer))
            resolver.write()
            identity_sets.drop_stage(writer)
            _record_state(writer, current_hash, last_load_order)
    summary = resolver.summary
    summary.full = full
    log.info(
        "identity resolution%s: %s, %s created, %s, %s refused",
        " (full)" if full else "", plural(summary.messages, "message"), plural(summary.profiles_created, "profile"),
        plural(summary.merges, "merge"), plural(summary.refused_merges, "merge"),
    )
    return summary


def _resolve_sets(extractor: IdentifierExtractor, writer: sa.Connection, sets: Iterable[IdentifierSet]) -> _Resolver:
    """Resolve identifier sets in the order of their first message."""
    resolver = _Resolver(extractor, writer)
    resolver.load()
    resolver.run(sets, lambda firsts: identity_sets.read_occurrences(writer, firsts))
    return resolver


def _clear(writer: sa.Connection) -> None:
    """Empty the identity tables for a full re-resolution.

    Dropping and creating them is much faster than deleting every row, above
    all on DuckDB, whose primary key indexes make a delete and re-insert of
    the same keys in one transaction slow to commit.
    """
    for table in (layout.message_profiles, layout.identifiers, layout.profiles, layout.merges, layout.account_users):
        writer.execute(sa.schema.DropTable(table))
        writer.execute(sa.schema.CreateTable(table))
        if writer.dialect.name != "duckdb":
            for index in table.indexes:
                writer.execute(sa.schema.CreateIndex(index))


class _Resolver:
    """The in-memory side of resolution: identifier values to profiles, and pending writes."""

    def __init__(self, extractor: IdentifierExtractor, writer: sa.Connection) -> None:
        self.extractor = extractor
        self.writer = writer
        self.summary = ResolveSummary(full=False)
        self.owner: dict[Pair, str] = {}
        self.profiles: dict[str, _Profile] = {}
        self.parent: dict[str, str] = {}  # profiles merged during this resolution -> survivor
        self.created: dict[str, tuple[int, datetime, str]] = {}  # new profile -> (seq, first_seen, message)
        self.seen: dict[Pair, list[datetime]] = {}  # touched values -> [first_seen, last_seen]
        self.earliest: dict[str, datetime] = {}
        self.merge_rows: list[tuple[Any, ...]] = []
        self.set_profiles: list[tuple[int, str | None]] = []  # settled sets -> profile at their first message
        self.message_profiles: list[tuple[str, str | None]] = []  # messages of refused sets -> profile
        self.pairs_of: dict[int, list[Pair]] = {}  # refused set id -> its normalised values
        self.next_seq = 1
        self.now = datetime.now(timezone.utc).replace(tzinfo=None)

    def load(self) -> None:
        """Read the canonical profiles and their identifier values."""
        index_of = {kind: index for index, kind in enumerate(self.extractor.types)}
        max_seq = self.writer.execute(sa.select(sa.func.max(layout.profiles.c.seq))).scalar()
        self.next_seq = (max_seq or 0) + 1
        for profile_id, seq in self.writer.execute(
            sa.select(layout.profiles.c.profile_id, layout.profiles.c.seq).where(layout.profiles.c.merged_into.is_(None))
        ):
            self.profiles[profile_id] = _Profile(seq)
        table = layout.identifiers
        for kind, value, profile_id in self.writer.execute(
            sa.select(table.c.identifier_type, table.c.identifier_value, table.c.profile_id)
        ):
            index = index_of.get(kind)
            profile = self.profiles.get(profile_id)
            if index is None or profile is None:
                continue
            self.owner[(index, value)] = profile_id
            profile.values.setdefault(index, set()).add(value)

    def find(self, profile_id: str) -> str:
        root = profile_id
        while root in self.parent:
            root = self.parent[root]
        while profile_id != root:  # shorten the chain for later look-ups
            self.parent[profile_id], profile_id = root, self.parent[profile_id]
        return root

    def run(self, sets: Iterable[IdentifierSet], fetch: Callable[[dict[int, int]], list[Occurrence]]) -> None:
        """Resolve each set at its first message, and message by message the sets that had a merge refused.

        A set whose first message links all its values is settled: its later
        messages match one profile and change nothing but time ranges. A set
        whose first message had a merge refused is not, so its later messages
        are fetched (`fetch`, given set id -> first position) and resolved in
        turn, interleaved with the first messages of other sets by position.
        """
        later: list[Occurrence] = []  # a heap of later messages of refused sets
        waiting: dict[int, int] = {}  # refused sets whose later messages are not fetched yet
        due = math.inf  # position of the earliest later message not fetched yet
        for item in sets:
            if waiting and due < item.pos:
                _push_all(later, fetch(waiting))
                waiting, due = {}, math.inf
            while later and later[0][0] < item.pos:
                self._resolve_single(*heapq.heappop(later)[1:])
            if self._resolve_first(item) and item.second_pos is not None:
                waiting[item.set_id] = item.pos
                due = min(due, item.second_pos)
        if waiting:
            _push_all(later, fetch(waiting))
        while later:
            self._resolve_single(*heapq.heappop(later)[1:])

    def _resolve_first(self, item: IdentifierSet) -> bool:
        """Resolve a set at its first message; return whether a merge was refused."""
        self.summary.messages += item.messages
        pairs = self.extractor.pairs(item.values)
        if not pairs:
            self.set_profiles.append((item.set_id, None))
            self.summary.unlinked += item.messages
            return False
        refusals = self.summary.refused_merges
        profile_id = self.resolve_message(item.message_id, item.timestamp, pairs)
        if self.summary.refused_merges != refusals:
            self.pairs_of[item.set_id] = pairs
            self.message_profiles.append((item.message_id, profile_id))
            self.summary.unlinked += profile_id is None
            return True
        self.set_profiles.append((item.set_id, profile_id))
        # The set's later messages: the same values on the same profile, over the set's time range.
        for pair in pairs:
            _widen(self.seen, pair, item.first_seen)
            _widen(self.seen, pair, item.last_seen)
        _earliest(self.earliest, profile_id, item.first_seen)
        return False

    def _resolve_single(self, set_id: int, timestamp: datetime, message_id: str) -> None:
        """Resolve a later message of a set that had a merge refused."""
        pairs = self.pairs_of[set_id]
        profile_id = self.resolve_message(message_id, timestamp, pairs)
        self.message_profiles.append((message_id, profile_id))
        self.summary.unlinked += profile_id is None

    def resolve_message(self, message_id: str, timestamp: datetime, pairs: list[Pair]) -> str | None:
        """Link one message's values to a profile, creating or merging; return the profile id."""
        while pairs:
            matched = {self.find(self.owner[pair]) for pair in pairs if pair in self.owner}
            if len(matched) == 1 and all(pair in self.owner for pair in pairs):
                profile_id = matched.pop()  # the usual case: every value already on one profile
                break
            exceeded = self._exceeded_limit(matched, pairs)
            if exceeded is None:
                profile_id = self._link(message_id, timestamp, matched, pairs)
                break
            self._refuse(message_id, timestamp, matched, pairs, exceeded)
            pairs = pairs[:-1]
        else:
            return None
        for pair in pairs:
            _widen(self.seen, pair, timestamp)
        _earliest(self.earliest, profile_id, timestamp)
        return profile_id
    def _exceeded_limit(self, matched: set[str], pairs: list[Pair]) -> int | None:
        """Return the first rule whose limit the linked profile would exceed, or None."""
        for index, limit in enumerate(self.extractor.limits):
            if limit is None:
                continue
            held = sum(len(self.profiles[profile_id].values.get(index, ())) for profile_id in matched)
            new = sum(1 for pair in pairs if pair[0] == index and pair not in self.owner)
            if held + new > limit:
                return index
        return None

    def _link(self, message_id: str, timestamp: datetime, matched: set[str], pairs: list[Pair]) -> str:
        if not matched:
            survivor = profile_id_for(message_id)
            self.profiles[survivor] = _Profile(self.next_seq)
            self.created[survivor] = (self.next_seq, timestamp, message_id)
            self.next_seq += 1
            self.summary.profiles_created += 1
        else:
            survivor = min(matched, key=lambda profile_id: self.profiles[profile_id].seq)
            for merged in sorted(matched - {survivor}, key=lambda profile_id: self.profiles[profile_id].seq):
                self._merge(merged, survivor, message_id, timestamp, pairs, sorted(matched))
        profile = self.profiles[survivor]
        for pair in pairs:
            if pair not in self.owner:
                self.owner[pair] = survivor
                profile.values.setdefault(pair[0], set()).add(pair[1])
        return survivor

    def _merge(self, merged: str, survivor: str, message_id: str, timestamp: datetime, pairs: list[Pair], involved: list[str]) -> None:
        source = self.profiles.pop(merged)
        target = self.profiles[survivor].values
        for index, values in source.values.items():
            target.setdefault(index, set()).update(values)
            for value in values:
                self.owner[(index, value)] = survivor
        self.parent[merged] = survivor
        if merged in self.earliest:
            _earliest(self.earliest, survivor, self.earliest[merged])
        self.summary.merges += 1
        self.merge_rows.append(
            (survivor, merged, involved, self._described(pairs), message_id, timestamp, False, None, self.now)
        )

    def _refuse(self, message_id: str, timestamp: datetime, matched: set[str], pairs: list[Pair], exceeded: int) -> None:
        dropped_index, dropped_value = pairs[-1]
        survivor = min(matched, key=lambda profile_id: self.profiles[profile_id].seq) if matched else None
        reason = (
            f"{self.extractor.types[exceeded]} limit {self.extractor.limits[exceeded]} would be exceeded; "
            f"dropped {self.extractor.types[dropped_index]} {dropped_value!r} from the message"
        )
        self.summary.refused_merges += 1
        self.merge_rows.append(
            (survivor, None, sorted(matched), self._described(pairs), message_id, timestamp, True, reason, self.now)
        )

    def _described(self, pairs: list[Pair]) -> list[dict[str, str]]:
        return [{"type": self.extractor.types[index], "value": value} for index, value in pairs]

    def write(self) -> None:
        """Write the message mapping, profiles, identifiers, merges and accounts; remap rows of merged profiles."""
        identity_sets.write_mapping(
            self.writer,
            [(set_id, self._root(profile_id)) for set_id, profile_id in self.set_profiles],
            [(message_id, self._root(profile_id)) for message_id, profile_id in self.message_profiles],
        )
        remap = [(merged, self.find(merged)) for merged in self.parent]
        _write_created_profiles(self.writer, self.created, {merged: survivor for merged, survivor in remap})
        _remap(self.writer, remap)
        earliest: dict[str, datetime] = {}
        for profile_id, timestamp in self.earliest.items():
            _earliest(earliest, self.find(profile_id), timestamp)
        _widen_first_seen(self.writer, earliest)
        identifier_rows = [
            (self.extractor.types[index], value, self.find(self.owner[(index, value)]), first, last)
            for (index, value), (first, last) in self.seen.items()
        ]
        _merge_ranges(self.writer, layout.identifiers, _IDENTIFIER_COLUMNS, identifier_rows, keys=2)
        account_rows = identity_sets.account_ranges(self.writer)
        _merge_ranges(self.writer, layout.account_users, _ACCOUNT_COLUMNS, account_rows, keys=2)
        load_rows(self.writer, layout.merges.name, _MERGE_COLUMNS, self.merge_rows)

    def _root(self, profile_id: str | None) -> str | None:
        return None if profile_id is None else self.find(profile_id)


_IDENTIFIER_COLUMNS = (
    ("identifier_type", "text"),
    ("identifier_value", "text"),
    ("profile_id", "text"),
    ("first_seen", "timestamp"),
    ("last_seen", "timestamp"),
)
_ACCOUNT_COLUMNS = (("account_id", "text"), ("profile_id", "text"), ("first_seen", "timestamp"), ("last_seen", "timestamp"))
_MERGE_COLUMNS = (
    ("survivor_profile_id", "text"),
    ("merged_profile_id", "text"),
    ("profiles", "json"),
    ("identifiers", "json"),
    ("message_id", "text"),
    ("message_timestamp", "timestamp"),
    ("refused", "boolean"),
    ("reason", "text"),
    ("resolved_at", "timestamp"),
)


def _push_all(heap: list[Occurrence], occurrences: list[Occurrence]) -> None:
    for occurrence in occurrences:
        heapq.heappush(heap, occurrence)


def _widen(ranges: dict[Any, list[datetime]], key: Any, timestamp: datetime) -> None:
    span = ranges.get(key)
    if span is None:
        ranges[key] = [timestamp, timestamp]
    else:
        span[0] = min(span[0], timestamp)
        span[1] = max(span[1], timestamp)


def _earliest(earliest: dict[str, datetime], profile_id: str, timestamp: datetime) -> None:
    current = earliest.get(profile_id)
    if current is None or timestamp < current:
        earliest[profile_id] = timestamp


def _fold_accounts(rows: list[tuple[str, str, datetime, datetime]]) -> list[tuple[str, str, datetime, datetime]]:
    """Combine rows that name the same (account, profile) after merges."""
    folded: dict[tuple[str, str], list[datetime]] = {}
    for account, profile_id, first, last in rows:
        _widen(folded, (account, profile_id), first)
        _widen(folded, (account, profile_id), last)
    return [(account, profile_id, first, last) for (account, profile_id), (first, last) in folded.items()]


def _write_created_profiles(writer: sa.Connection, created: dict[str, tuple[int, datetime, str]], merged: dict[str, str]) -> None:
    columns = (("profile_id", "text"), ("seq", "bigint"), ("first_seen", "timestamp"), ("first_message_id", "text"), ("merged_into", "text"))
    rows = [(profile_id, seq, first, message_id, merged.get(profile_id)) for profile_id, (seq, first, message_id) in created.items()]
    load_rows(writer, layout.profiles.name, columns, rows)


def _remap(writer: sa.Connection, remap: list[tuple[str, str]]) -> None:
    """Point rows of profiles merged during this resolution at their survivor."""
    if not remap:
        return
    create_temp_table(writer, "personas_profile_remap", (("merged", "text"), ("survivor", "text")))
    load_rows(writer, "personas_profile_remap", (("merged", "text"), ("survivor", "text")), remap)
    writer.execute(
        sa.text(
            "UPDATE personas_profiles SET merged_into = r.survivor FROM personas_profile_remap AS r "
            "WHERE personas_profiles.profile_id = r.merged"
        )
    )
    for table in ("personas_message_profiles", "personas_identifiers"):
        writer.execute(
            sa.text(f"UPDATE {table} SET profile_id = r.survivor FROM personas_profile_remap AS r WHERE {table}.profile_id = r.merged")
        )
    # Account rows may collide after remapping; fold them through the range merge.
    rows = writer.execute(
        sa.text(
            "SELECT a.account_id, r.survivor, a.first_seen, a.last_seen FROM personas_account_users AS a "
            "JOIN personas_profile_remap AS r ON a.profile_id = r.merged"
        )
    ).all()
    if rows:
        writer.execute(
            sa.text(
                "DELETE FROM personas_account_users WHERE profile_id IN (SELECT merged FROM personas_profile_remap)"
            )
        )
        _merge_ranges(writer, layout.account_users, _ACCOUNT_COLUMNS, _fold_accounts([tuple(row) for row in rows]), keys=2)
    writer.execute(sa.text("DROP TABLE personas_profile_remap"))


def _widen_first_seen(writer: sa.Connection, earliest: dict[str, datetime]) -> None:
    """Lower profiles' first_seen to the earliest message seen now, and to that of profiles merged into them."""
    if earliest:
        columns = (("profile_id", "text"), ("first_seen", "timestamp"))
        create_temp_table(writer, "personas_profile_times", columns)
        load_rows(writer, "personas_profile_times", columns, list(earliest.items()))
        writer.execute(
            sa.text(
                "UPDATE personas_profiles SET first_seen = t.first_seen FROM personas_profile_times AS t "
                "WHERE personas_profiles.profile_id = t.profile_id AND t.first_seen < personas_profiles.first_seen"
            )
        )
        writer.execute(sa.text("DROP TABLE personas_profile_times"))
    writer.execute(
        sa.text(
            "UPDATE personas_profiles SET first_seen = m.first_seen FROM "
            "(SELECT merged_into AS profile_id, min(first_seen) AS first_seen FROM personas_profiles "
            "WHERE merged_into IS NOT NULL GROUP BY merged_into) AS m "
            "WHERE personas_profiles.profile_id = m.profile_id AND m.first_seen < personas_profiles.first_seen"
        )
    )


def _merge_ranges(writer: sa.Connection, table: sa.Table, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]], *, keys: int) -> None:
    """Upsert rows whose last two columns are first_seen and last_seen, widening stored ranges.

    The other non-key columns take the new row's values.
    """
    if not rows:
        return
    stage = f"{table.name}_stage"
    create_temp_table(writer, stage, columns)
    load_rows(writer, stage, columns, rows)
    match = " AND ".join(f"s.{name} = t.{name}" for name, _ in columns[:keys])
    writer.execute(
        sa.text(
            f"UPDATE {stage} AS s SET first_seen = least(s.first_seen, t.first_seen), "
            f"last_seen = greatest(s.last_seen, t.last_seen) FROM {table.name} AS t WHERE {match}"
        )
    )
    writer.execute(sa.text(f"DELETE FROM {table.name} AS t WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {match})"))
    names = ", ".join(name for name, _ in columns)
    writer.execute(sa.text(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage}"))
    writer.execute(sa.text(f"DROP TABLE {stage}"))


def _record_state(writer: sa.Connection, current_hash: str, last_load_order: Any) -> None:
    state = layout.identity_state
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    batch = last_load_order if isinstance(last_load_order, int) else None
    previous = writer.execute(sa.select(state.c.last_batch_seq)).scalar_one_or_none()
    writer.execute(state.delete())
    writer.execute(
        state.insert().values(id=1, rules_hash=current_hash, last_batch_seq=batch if batch is not None else previous, resolved_at=now)
    )
