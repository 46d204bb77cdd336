"""The model of `personas.yaml`: where data and state live, identity rules, defaults."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictInt, field_validator

from reconciler.spec.models import MaxRemovals, SpecModel, checked_url, parse_timestamp
from reconciler.spec.urls import database_url_problem
from reconciler.spec.types import Duration, Schedule

DEFAULT_WAREHOUSE = "${PERSONAS_WAREHOUSE_URL:-duckdb:///.personas/warehouse.duckdb}"
DEFAULT_STATE = "${PERSONAS_STATE_URL:-sqlite:///.personas/state.db}"


class IdentifierRule(SpecModel):
    """One identifier type used to link messages into profiles."""

    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Identifier type name, such as user_id, email or anonymous_id.")
    limit: StrictInt | None = Field(
        None, ge=1, description="Most values of this type one profile may hold; a merge that would exceed it is refused. Absent: no limit."
    )
    normalize: Literal["none", "trim", "lowercase", "email"] | None = Field(
        None,
        description="trim: strip spaces. lowercase: trim and lower-case. email: trim and lower-case. "
        "Absent: email for the email type, trim otherwise.",
    )
    from_: list[str] | None = Field(
        None,
        alias="from",
        description="Message fields holding values, in order (such as traits.email, context.traits.email). "
        "Absent: userId for user_id, anonymousId for anonymous_id, else traits.<type> and context.traits.<type>.",
    )

    @property
    def normalization(self) -> str:
        if self.normalize:
            return self.normalize
        return "email" if self.type == "email" else "trim"

    @property
    def fields(self) -> list[str]:
        if self.from_:
            return list(self.from_)
        if self.type == "user_id":
            return ["userId"]
        if self.type == "anonymous_id":
            return ["anonymousId"]
        return [f"traits.{self.type}", f"context.traits.{self.type}"]


def _default_identifiers() -> list[IdentifierRule]:
    return [
        IdentifierRule(type="user_id", limit=1),
        IdentifierRule(type="email", limit=5, normalize="email", **{"from": ["traits.email", "context.traits.email"]}),
        IdentifierRule(type="anonymous_id", limit=50),
    ]


def default_identifier_types() -> list[str]:
    """The identifier types used when personas.yaml has no `identity.identifiers`."""
    return [rule.type for rule in _default_identifiers()]


class IdentityRules(SpecModel):
    """How messages are linked into profiles. Planned and applied as `project.identity`."""

    identifiers: list[IdentifierRule] = Field(
        default_factory=_default_identifiers,
        min_length=1,
        description="Identifier types in priority order, highest first (an ordered list). Absent: user_id, email, anonymous_id.",
    )
    blocked_values: list[str] = Field(
        default_factory=lambda: ["", "null", "undefined", "anonymous", "anonymousId"],
        description="Values never used to link, compared exactly after normalisation.",
        json_schema_extra={"x-personas-set": True},
    )
    blocked_patterns: list[str] = Field(
        default_factory=lambda: ["^[0-]+$"],
        description="Regular expressions (Python syntax); a value matching any is never used to link.",
        json_schema_extra={"x-personas-set": True},
    )

    # Identifier types listed twice and blocked patterns that do not compile are reported by
    # reconciler.spec.checks.settings_problems, on the plain data, so each is found on its own.

    def rule(self, identifier_type: str) -> IdentifierRule | None:
        return next((rule for rule in self.identifiers if rule.type == identifier_type), None)


class Defaults(SpecModel):
    refresh: Schedule = Field(Schedule("1h"), description="Refresh of audiences that set none. Absent: 1h.")
    max_removals: MaxRemovals | None = Field(None, description="Removal guard of destinations that set none. Absent: 20% and at least 10.")


class DuckDBRuntime(SpecModel):
    memory_limit: str = Field("2GB", description="DuckDB memory_limit, such as 2GB. Absent: 2GB.")
    threads: StrictInt | None = Field(None, ge=1, description="DuckDB threads. Absent: the number of CPU cores.")
    temp_directory: str = Field(".personas/tmp", description="Where DuckDB spills to disk, relative to the project. Absent: .personas/tmp.")


class DaemonRuntime(SpecModel):
    """Settings kept for a long-running scheduler process; no command of this release reads them."""

    host: str = Field(
        "127.0.0.1", description="Address for the health and metrics endpoint of a scheduler process. Absent: 127.0.0.1."
    )
    port: StrictInt = Field(9464, ge=0, le=65535, description="Port of that endpoint; 0 turns it off. Absent: 9464.")
    lease: Duration = Field(Duration("1m"), description="Length of the leader lease a scheduler process renews. Absent: 1m.")
    misfire_grace: Duration = Field(Duration("5m"), description="How late a missed schedule may still run. Absent: 5m.")


class Runtime(SpecModel):
    duckdb: DuckDBRuntime = Field(default_factory=DuckDBRuntime)
    warehouse_busy_timeout: Duration = Field(
        Duration("30s"), description="How long a command waits for a busy embedded warehouse file. Absent: 30s."
    )
    sync_concurrency: StrictInt = Field(4, ge=1, le=64, description="Destinations synced at once. Absent: 4.")
    daemon: DaemonRuntime = Field(default_factory=DaemonRuntime)


class Sources(SpecModel):
    """Read events from an existing Segment or RudderStack warehouse schema instead of personas' own tables."""

    format: Literal["segment", "rudderstack"] = Field(description="Layout of the tables.")
    schema_: str | None = Field(None, alias="schema", description="Schema holding the tables. Absent: the connection's default.")
    url: str | None = Field(None, description="SQLAlchemy URL of that warehouse. Absent: the project's warehouse.")
    tables: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides of table names, by call type (tracks, identifies, pages, screens, groups, aliases). Absent: the format's names.",
    )

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return value if value is None else checked_url(value, database_url_problem)


class ProjectSettings(SpecModel):
    """`personas.yaml`."""

    version: Literal[1] = Field(description="Format version of this file; always 1.")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$", description="Project name.")
    warehouse: str = Field(DEFAULT_WAREHOUSE, description="SQLAlchemy URL of the warehouse. Absent: an embedded DuckDB file in .personas/.")
    state: str = Field(DEFAULT_STATE, description="SQLAlchemy URL of the state store (SQLite or PostgreSQL). Absent: .personas/state.db.")
    timezone: str = Field("UTC", description="IANA time zone for cron schedules and display. Absent: UTC.")
    as_of: datetime | None = Field(
        None, description="Fixed evaluation time for historical data (UTC unless a zone is given). Absent or null: now."
    )
    identity: IdentityRules = Field(default_factory=IdentityRules)
    defaults: Defaults = Field(default_factory=Defaults)
    runtime: Runtime = Field(default_factory=Runtime)
    sources: Sources | None = Field(None, description="Read events from existing Segment or RudderStack tables. Absent: personas' own event tables.")

    @field_validator("warehouse", "state")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return checked_url(value, database_url_problem)

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of_utc(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_timestamp(value)
            except ValueError:
                raise ValueError(f"invalid timestamp {value!r}: use ISO 8601, such as 1998-07-01 or 2024-03-31T00:00:00Z") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Berlin") from None
        return value
