"""The interface every destination type implements, and the values it exchanges.

A destination adapter receives batches of changes and reports which it
acknowledged and which it rejected. It declares what it can do in
`Capabilities`; the sync engine reads those and never probes. Adapters raise
TransientError (try again later: the changes stay pending) or PermanentError
(a person must act: the whole sync fails, nothing is marked) from
reconciler.errors; they never print.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

ChangeType = Literal["entered", "exited", "updated"]


@dataclass(frozen=True)
class Capabilities:
    """The operations a destination type supports.

    `max_batch_size` bounds `batch_size` (None: unbounded). `deferred_ack`:
    nothing a batch carries is acknowledged until `commit()` succeeds, so the
    engine acknowledges the whole run's changes at once (file outputs, which
    are replaced atomically). `full_snapshot`: the engine hands `finish()` the
    audience's whole acknowledged membership after each sync.
    """

    supports_removals: bool
    default_batch_size: int
    max_batch_size: int | None
    idempotency_keys: bool
    carries_traits: bool
    deferred_ack: bool = False
    full_snapshot: bool = False

    def batch_size(self, configured: int | None) -> int:
        size = configured or self.default_batch_size
        return min(size, self.max_batch_size) if self.max_batch_size else size


@dataclass(frozen=True, slots=True)
class Change:
    """One change for one identifier value of one audience.

    `idempotency_key` is the same every time this change is delivered again
    (retries, crashed runs); `at` is the evaluation time of the run that found it.
    """

    type: ChangeType
    audience: str
    identifier_type: str
    identifier_value: str
    idempotency_key: str
    at: datetime
    traits: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Render the change as it appears in webhook bodies and JSON Lines files."""
        return {
            "type": self.type,
            "audience": self.audience,
            "identifier": {"type": self.identifier_type, "value": self.identifier_value},
            "traits": self.traits,
            "idempotency_key": self.idempotency_key,
            "at": format_instant(self.at),
        }


@dataclass
class SendResult:
    """Outcome of one batch: acknowledged keys, and rejected keys with reasons."""

    acknowledged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)

    def extend(self, other: "SendResult") -> None:
        self.acknowledged.extend(other.acknowledged)
        self.rejected.update(other.rejected)


@dataclass(frozen=True)
class SnapshotMember:
    """One identifier value a destination holds from personas, as the snapshot records it."""

    identifier_type: str
    identifier_value: str
    entered_at: datetime | None


class DestinationAdapter:
    """Base of the adapters; one instance serves one destination for one sync pass.

    The engine calls, in order: `send()` for each batch (any number of times,
    for any of the destination's audiences), `commit()` once when
    `deferred_ack` is set, `finish(audience, members)` once per audience after
    its snapshot advanced, and `close()`.
    """

    capabilities: ClassVar[Capabilities]

    def send(self, changes: Sequence[Change]) -> SendResult:
        raise NotImplementedError

    def commit(self) -> None:
        """Make the changes sent since the last commit durable (deferred_ack types only)."""

    def finish(self, audience: str, members: Iterable[SnapshotMember]) -> None:
        """Called with an audience's acknowledged membership after its sync."""

    def rename(self, old: str, new: str, values: Sequence[str]) -> None:
        """Move what the destination holds under audience name `old` to `new` (renamed audiences).

        `values` are the identifier values personas sent under the old name.
        Types that key nothing by audience name keep this no-op.
        """

    def describe(self) -> str:
        """Return a short label for messages and logs, free of credentials and URL paths."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


@functools.lru_cache(maxsize=1024)
def format_instant(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the millisecond; a naive time is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_key(changes: Sequence[Change]) -> str:
    """Hash the changes' keys into the batch key, so a re-sent batch keeps its key."""
    digest = hashlib.sha256()
    for change in changes:
        digest.update(change.idempotency_key.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]
