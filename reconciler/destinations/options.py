"""Options of one sync pass, as `personas run` passes them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """In-run retries of one request: at most `attempts` tries within `budget_s` seconds.

    Delays grow from `base_delay_s`, doubling, with full jitter, capped at
    `max_delay_s`; a Retry-After longer than what is left of the budget ends
    the retries at once (the changes stay pending for the next run).
    """

    attempts: int = 5
    budget_s: float = 60.0
    base_delay_s: float = 0.5
    max_delay_s: float = 15.0


@dataclass(frozen=True)
class SyncOptions:
    """`approve_removals` and `full_resync` hold `AUDIENCE` or `AUDIENCE:DESTINATION` selectors."""

    approve_removals: tuple[str, ...] = ()
    full_resync: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def approves(self, audience: str, destination: str) -> bool:
        return _selected(self.approve_removals, audience, destination)

    def resyncs(self, audience: str, destination: str) -> bool:
        return _selected(self.full_resync, audience, destination)


def parse_selector(text: str) -> tuple[str, str | None]:
    """`winback`, `audience.winback:crm` -> ("winback", None), ("winback", "crm")."""
    audience, _, destination = text.partition(":")
    audience = audience.removeprefix("audience.")
    destination = destination.removeprefix("destination.")
    return audience, destination or None


def _selected(selectors: tuple[str, ...], audience: str, destination: str) -> bool:
    for selector in selectors:
        wanted_audience, wanted_destination = parse_selector(selector)
        if wanted_audience == audience and wanted_destination in (None, destination):
            return True
    return False
