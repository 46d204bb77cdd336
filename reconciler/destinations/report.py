"""Sync reports: a SyncRecord plus the details of one run that are not stored.

The stored SyncRecord keeps what the pass queued (entered, exited, updated)
and how delivery went. `SyncReport` adds what was delivered in this run by
change type, how many of those were queued by an earlier run, the first
rejection reason and the removal guard's verdict, so `personas run` can say
in one line what reached the destination and what did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from reconciler.state.records import SyncRecord

REASON_WIDTH = 80


@dataclass(frozen=True)
class SyncReport(SyncRecord):
    """A SyncRecord with the details of this run that are not stored.

    `delivered` counts acknowledged changes by type ("entered", "exited",
    "updated"). `earlier` counts acknowledged changes queued by an earlier run
    (sent again after an outage). `first_rejection` is the first reason a
    destination gave for rejecting a change, and `hold` the removal guard's
    reason for holding removals back.
    """

    delivered: dict[str, int] = field(default_factory=dict)
    earlier: int = 0
    first_rejection: str | None = None
    hold: str | None = None

    def stored(self) -> SyncRecord:
        """Return the record as the state store keeps it, without the details of this run."""
        names = {item.name for item in fields(SyncRecord)}
        return SyncRecord(**{key: value for key, value in asdict(self).items() if key in names})

    @property
    def selector(self) -> str:
        return f"{self.audience}:{self.destination}"


def summary_line(record: Any) -> str:
    """One line per sync: what was sent and acknowledged in this run, and what was not."""
    delivered = getattr(record, "delivered", None)
    if delivered is None:  # a plain SyncRecord: only stored counts are known
        return f"sync {record.audience} -> {record.destination}: {record.status}, sent {record.acknowledged}"
    parts = [f"sent {record.acknowledged}{_breakdown(record)}"]
    if record.rejected:
        parts.append(f"{record.rejected} rejected ({shorten(record.first_rejection or 'no reason given')}); "
                     f"see them with personas syncs show {record.selector}")
    if record.held_back:
        noun = "exit" if record.held_back == 1 else "exits"
        parts.append(f"{record.held_back} {noun} held back ({record.hold}); "
                     f"approve with personas run --approve-removals {record.selector}")
    unanswered = record.sent - record.acknowledged - record.rejected
    if record.status == "pending" and unanswered > 0:
        parts.append(f"{unanswered} not acknowledged, sent again next run")
    return f"sync {record.audience} -> {record.destination}: {record.status}, " + "; ".join(parts)


def _breakdown(record: SyncReport) -> str:
    if not record.acknowledged:
        return ""
    counts = ", ".join(f"{kind} {record.delivered.get(kind, 0)}" for kind in ("entered", "exited", "updated"))
    earlier = f"; {record.earlier} from an earlier run" if record.earlier else ""
    return f" ({counts}{earlier})"


def needs_attention(records: Sequence[Any]) -> list[str]:
    """Messages for records that make a run exit 3.

    Held-back removals, failed syncs, changes left pending, and changes a
    destination rejected in this run: a rejected change is not sent again
    until its content changes, so a person has to look at it now.
    """
    messages = []
    for record in records:
        if record.held_back or record.rejected or record.status in ("failed", "pending"):
            messages.append(f"{record.audience}:{record.destination}: {record.error}")
    return messages


def shorten(text: str, width: int = REASON_WIDTH) -> str:
    """First line of `text`, cut to `width` characters with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= width else line[: width - 3] + "..."
