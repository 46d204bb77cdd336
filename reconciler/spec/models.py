"""Pydantic models of the three resource kinds: Trait, Audience and Destination.

The models decide every type; the YAML loader hands them plain strings,
numbers, booleans, lists and mappings (YAML 1.2, so `NO` stays a string).
Unknown keys are rejected. Each field's description gives its unit and what
leaving it out means; the JSON Schema and docs/specs.md are generated from, or
checked against, these descriptions.

Lists marked `x-personas-set` in the schema are sets: their order carries no
meaning and plans compare them sorted. Every other list is ordered.
String fields may hold `${NAME}` or `${NAME:-default}` references; they are kept
as written and substituted only when a command needs the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import (
    StrictBool,
    StrictInt,
    StrictStr,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from reconciler.spec.types import Duration, Percent, Rate, Schedule
from reconciler.spec.urls import database_url_problem, redis_url_problem, webhook_url_problem

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
API_VERSION = "personas/v1"

ValueType = Literal["boolean", "number", "string", "timestamp", "list"]
# Strict members, so that 1.0 stays a number and never becomes the boolean true.
Scalar = Union[StrictBool, StrictInt, Decimal, StrictStr]

SET = {"x-personas-set": True}


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_enum_values=True)


# --------------------------------------------------------------------------- operators

COMPARISON_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte")
LIST_OPERATORS = ("in", "not_in")
TEXT_OPERATORS = ("contains", "starts_with", "ends_with")
PRESENCE_OPERATORS = ("exists", "missing")
RELATIVE_TIME_OPERATORS = ("within_last", "before_last", "within_next", "after_next")
OPERATORS = (
    COMPARISON_OPERATORS + LIST_OPERATORS + TEXT_OPERATORS + PRESENCE_OPERATORS + ("between",) + RELATIVE_TIME_OPERATORS
)

# Which operators make sense on each value type; semantic checks use this table.
OPERATORS_BY_VALUE_TYPE: dict[str, frozenset[str]] = {
    "boolean": frozenset({"equals", "not_equals", "exists", "missing"}),
    "number": frozenset(COMPARISON_OPERATORS + LIST_OPERATORS + PRESENCE_OPERATORS + ("between",)),
    "string": frozenset(COMPARISON_OPERATORS + LIST_OPERATORS + TEXT_OPERATORS + PRESENCE_OPERATORS + ("between",)),
    "timestamp": frozenset(COMPARISON_OPERATORS + PRESENCE_OPERATORS + ("between",) + RELATIVE_TIME_OPERATORS),
    "list": frozenset({"contains", "exists", "missing"}),
}


class OperatorFields(SpecModel):
    """Exactly one operator, applied to a property or a trait value.

    Every operator except `missing` is false on a missing value, so
    `not_equals: pro` does not match a profile without the value; wrap the
    condition in `not` to include those.
    """

    equals: Scalar | None = Field(None, description="True when the value equals this one. Text compares case-sensitively.")
    not_equals: Scalar | None = Field(None, description="True when the value is present and differs from this one.")
    gt: Scalar | None = Field(None, description="Greater than: numbers, timestamps (ISO 8601, UTC unless a zone is given) or text.")
    gte: Scalar | None = Field(None, description="Greater than or equal to.")
    lt: Scalar | None = Field(None, description="Less than.")
    lte: Scalar | None = Field(None, description="Less than or equal to.")
    in_: list[Scalar] | None = Field(None, alias="in", description="True when the value is one of these.", json_schema_extra=SET)
    not_in: list[Scalar] | None = Field(None, description="True when the value is present and none of these.", json_schema_extra=SET)
    contains: Scalar | None = Field(None, description="Text: holds this substring. List: holds this element.")
    starts_with: str | None = Field(None, description="Text starting with this prefix (case-sensitive).")
    ends_with: str | None = Field(None, description="Text ending with this suffix (case-sensitive).")
    exists: Literal[True] | None = Field(None, description="`exists: true`: the value is present (not null).")
    missing: Literal[True] | None = Field(None, description="`missing: true`: the value is absent or null.")
    between: list[Scalar] | None = Field(
        None, min_length=2, max_length=2, description="[low, high], both ends included."
    )
    within_last: Duration | None = Field(None, description="Timestamp in [as_of - duration, as_of].")
    before_last: Duration | None = Field(None, description="Timestamp before as_of - duration.")
    within_next: Duration | None = Field(None, description="Timestamp in [as_of, as_of + duration].")
    after_next: Duration | None = Field(None, description="Timestamp after as_of + duration.")

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> "OperatorFields":
        given = self.operators_given()
        if len(given) != 1:
            listed = ", ".join(given) if given else "none"
            raise ValueError(
                f"expected exactly one operator, found {listed}; operators: {', '.join(OPERATORS)}"
            )
        if self.between is not None:
            low, high = self.between
            if isinstance(low, (int, Decimal)) and isinstance(high, (int, Decimal)) and not isinstance(low, bool):
                if low > high:
                    raise ValueError(f"between needs [low, high], but {low} is greater than {high}")
        return self

    def operators_given(self) -> list[str]:
        names = []
        for name in OPERATORS:
            attribute = "in_" if name == "in" else name
            if getattr(self, attribute) is not None:
                names.append(name)
        return names

    @property
    def operator(self) -> str:
        return self.operators_given()[0]

    @property
    def operand(self) -> Any:
        name = self.operator
        return getattr(self, "in_" if name == "in" else name)


class PropertyFilter(OperatorFields):
    """A filter on one event property, such as `{property: revenue, gt: 0}`."""

    property: str = Field(
        min_length=1,
        description="Property name in the event's `properties`; dots reach nested keys (`product.sku`). "
        "For `Page Viewed`, `name` is the page name.",
    )


class Window(SpecModel):
    """A time window `[as_of - from, as_of - to)` in exact durations.

    Written as one duration (`30d`, meaning from 30d ago up to as_of) or as
    `{from: 120d, to: 45d}`.
    """

    from_: Duration = Field(alias="from", description="How far back the window starts, as a duration before as_of.")
    to: Duration = Field(Duration("0s"), description="How far back the window ends (exclusive). Absent: as_of itself.")

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"from": value}
        return value

    @model_validator(mode="after")
    def _from_before_to(self) -> "Window":
        if self.from_.seconds == 0:
            raise ValueError("a window must be longer than 0s; write the length to look back, such as 30d")
        if self.from_.seconds <= self.to.seconds:
            raise ValueError(
                f"window from {self.from_} must reach further back than to {self.to}; "
                "for the 120 to 45 days before as_of, write {from: 120d, to: 45d}"
            )
        return self


def _window_schema(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [
        {"type": "string", "pattern": r"^[0-9]+(s|m|h|d|w)$"},
        {k: v for k, v in schema.items() if k != "oneOf"},
    ]
    for key in ("type", "properties", "required", "additionalProperties"):
        schema.pop(key, None)


Window.model_config["json_schema_extra"] = _window_schema


class EventSelection(SpecModel):
    """Which events a trait or condition reads."""

    event: str = Field(
        min_length=1,
        description="Event name as sent in `track` calls. `page` and `screen` calls are `Page Viewed` and `Screen Viewed`.",
    )
    where: list[PropertyFilter] = Field(
        default_factory=list, description="Property filters, all of which must hold. Absent: every event of that name.",
        json_schema_extra=SET,
    )
    window: Window | None = Field(None, description="Only events in this window count. Absent: all history before as_of.")


# --------------------------------------------------------------------------- traits

class _TraitBase(SpecModel):
    entity: Literal["user", "account"] = Field("user", description="Whose trait this is: a user profile or an account (from group calls).")


class EventCounterTrait(_TraitBase, EventSelection):
    """Number of matching events (0 for a candidate with none)."""

    type: Literal["event_counter"]


class AggregationTrait(_TraitBase, EventSelection):
    """sum/avg/min/max of a numeric property, as DECIMAL(38,9).

    Numbers sent as strings are cast; present values that do not parse are
    skipped and counted as invalid per run; missing values are skipped.
    The value is missing when no matching event has a usable value.
    """

    type: Literal["aggregation"]
    function: Literal["sum", "avg", "min", "max"] = Field(description="Aggregate function over the property's values.")
    property: str = Field(min_length=1, description="Numeric property to aggregate.")


class MostFrequentTrait(_TraitBase, EventSelection):
    """The most common value of a property; ties are broken alphabetically."""

    type: Literal["most_frequent"]
    property: str = Field(min_length=1, description="Property whose most common value is taken.")
    min_frequency: StrictInt = Field(2, ge=1, description="Least number of occurrences for a value to count. Absent: 2.")
    value_type: Literal["string", "number", "boolean"] = Field("string", description="Type of the property's values. Absent: string.")


class FirstLastTrait(_TraitBase, EventSelection):
    """A property from the earliest (`first`) or latest (`last`) matching event.

    Events are ordered by (timestamp, messageId). Without `property`, the
    value is that event's timestamp, which gives "first seen" and "last seen".
    """

    type: Literal["first", "last"]
    property: str | None = Field(None, min_length=1, description="Property to take. Absent: the event's timestamp.")
    value_type: ValueType | None = Field(
        None, description="Type of the property's values. Absent: string, or timestamp when `property` is absent."
    )

    @model_validator(mode="after")
    def _timestamp_without_property(self) -> "FirstLastTrait":
        if self.property is None and self.value_type not in (None, "timestamp"):
            raise ValueError("without `property` the value is the event's timestamp, so value_type must be timestamp")
        return self


class UniqueTrait(_TraitBase, EventSelection):
    """Distinct values of a property: a sorted list (`unique_list`) or their count (`unique_count`)."""

    type: Literal["unique_list", "unique_count"]
    property: str = Field(min_length=1, description="Property whose distinct values are collected.")


class IdentifyTrait(_TraitBase):
    """The latest value of a trait sent in identify calls (group calls for accounts); an explicit null clears it."""

    type: Literal["identify"]
    trait: str = Field(min_length=1, description="Key in the identify call's `traits`; dots reach nested keys.")
    value_type: ValueType = Field(description="Type of the values; operators on this trait are checked against it.")


class SqlTrait(_TraitBase):
    """An escape hatch: a SELECT returning (identifier value, value) rows.

    `:as_of` is bound to the run's evaluation time. Identifier values are
    matched exactly against the normalised values identity resolution stored
    (emails trimmed and lower-cased); a value that matches no profile is skipped.
    """

    type: Literal["sql"]
    query: str = Field(min_length=1, description="SELECT with two columns: an identifier value, then the trait value.")
    identifier: str = Field(min_length=1, description="Identifier type of the first column, such as user_id or email.")
    value_type: ValueType = Field(description="Type of the second column.")


TraitSpec = Annotated[
    Union[EventCounterTrait, AggregationTrait, MostFrequentTrait, FirstLastTrait, UniqueTrait, IdentifyTrait, SqlTrait],
    Field(discriminator="type"),
]

TRAIT_TYPES = (
    "event_counter", "aggregation", "most_frequent", "first", "last", "unique_list", "unique_count", "identify", "sql",
)


def trait_value_type(spec: Any) -> str:
    """The value type a trait's values have, implied by its type or declared."""
    if spec.type in ("event_counter", "unique_count", "aggregation"):
        return "number"
    if spec.type == "unique_list":
        return "list"
    if spec.type in ("first", "last"):
        if spec.value_type:
            return spec.value_type
        return "timestamp" if spec.property is None else "string"
    return spec.value_type


# --------------------------------------------------------------------------- audience conditions

class Count(SpecModel):
    """How many matching events a profile needs. Absent: at least one."""

    equals: StrictInt | None = Field(None, ge=0)
    gt: StrictInt | None = Field(None, ge=0)
    gte: StrictInt | None = Field(None, ge=0)
    lt: StrictInt | None = Field(None, ge=1)
    lte: StrictInt | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_integer(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"equals": value}
        return value

    @model_validator(mode="after")
    def _some_bound(self) -> "Count":
        if all(getattr(self, name) is None for name in ("equals", "gt", "gte", "lt", "lte")):
            raise ValueError("count needs a bound: an integer (exactly that many) or equals/gt/gte/lt/lte")
        if self.equals is not None and any(getattr(self, n) is not None for n in ("gt", "gte", "lt", "lte")):
            raise ValueError("count: equals cannot be combined with other bounds")
        return self


def _count_schema(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [
        {"type": "integer", "minimum": 0, "description": "Exactly this many; 0 means the event was not performed."},
        {k: v for k, v in schema.items() if k != "oneOf"},
    ]
    for key in ("type", "properties", "additionalProperties"):
        schema.pop(key, None)


Count.model_config["json_schema_extra"] = _count_schema


class EventCondition(EventSelection):
    """Profiles whose matching events, within the window, number as `count` says."""

    count: Count | None = Field(None, description="Bounds on the number of matching events. Absent: at least 1 (`{gte: 1}`); `0` means did not perform.")


class TraitCondition(OperatorFields):
    """A test of one trait's value with one operator."""

    trait: str = Field(description="Name of the trait to test.")


class AudienceCondition(SpecModel):
    """Membership of another audience (holdout members included)."""

    audience: str = Field(description="Name of the audience.")


class SequenceStep(EventSelection):
    """One step of a funnel."""

    within: Duration | None = Field(
        None, description="Longest time after the previous step. Absent: any time later. Not allowed on the first step."
    )


class SequenceCondition(SpecModel):
    """Events in order: each step after the previous one (by timestamp, then messageId)."""

    sequence: list[SequenceStep] = Field(min_length=2, description="Ordered steps (an ordered list).")
    window: Window | None = Field(None, description="The first step must fall in this window. Absent: all history.")

    @model_validator(mode="after")
    def _first_step_has_no_within(self) -> "SequenceCondition":
        if self.sequence and self.sequence[0].within is not None:
            raise ValueError("the first step of a sequence cannot have `within`; put a window on the sequence instead")
        return self


class AllCondition(SpecModel):
    all: list["Condition"] = Field(min_length=1, description="Every condition holds.", json_schema_extra=SET)


class AnyCondition(SpecModel):
    any: list["Condition"] = Field(min_length=1, description="At least one condition holds.", json_schema_extra=SET)


class NotCondition(SpecModel):
    not_: "Condition" = Field(alias="not", description="The exact complement within the candidates.")


class AnyUserCondition(SpecModel):
    any_user: "Condition" = Field(description="Account audiences: at least one user of the account meets the condition.")


class AllUsersCondition(SpecModel):
    all_users: "Condition" = Field(description="Account audiences: the account has users and every one meets the condition.")


class NoUserCondition(SpecModel):
    no_user: "Condition" = Field(description="Account audiences: no user of the account meets the condition.")


CONDITION_KINDS = ("event", "trait", "audience", "sequence", "all", "any", "not", "any_user", "all_users", "no_user")


_KIND_OF_MODEL: dict[type, str | None] = {}


def condition_kind(value: Any) -> str | None:
    """The kind of a condition: the one kind key its mapping holds, else None."""
    if isinstance(value, BaseModel):
        model = type(value)
        if model not in _KIND_OF_MODEL:  # looked up once per class: loading calls this for every condition
            fields = model.model_fields
            _KIND_OF_MODEL[model] = next(
                (kind for kind in CONDITION_KINDS if kind in fields or ("not_" if kind == "not" else kind) in fields), None
            )
        return _KIND_OF_MODEL[model]
    if not isinstance(value, dict):
        return None
    kinds = [key for key in CONDITION_KINDS if key in value]
    return kinds[0] if len(kinds) == 1 else None


Condition = Annotated[
    Union[
        Annotated[EventCondition, Tag("event")],
        Annotated[TraitCondition, Tag("trait")],
        Annotated[AudienceCondition, Tag("audience")],
        Annotated[SequenceCondition, Tag("sequence")],
        Annotated[AllCondition, Tag("all")],
        Annotated[AnyCondition, Tag("any")],
        Annotated[NotCondition, Tag("not")],
        Annotated[AnyUserCondition, Tag("any_user")],
        Annotated[AllUsersCondition, Tag("all_users")],
        Annotated[NoUserCondition, Tag("no_user")],
    ],
    Discriminator(
        condition_kind,
        custom_error_type="condition_kind",
        custom_error_message="a condition needs exactly one of: " + ", ".join(CONDITION_KINDS),
    ),
]

for _model in (AllCondition, AnyCondition, NotCondition, AnyUserCondition, AllUsersCondition, NoUserCondition):
    _model.model_rebuild()


class AudienceDestination(SpecModel):
    """Where an audience is sent, and what each change carries."""

    destination: str = Field(description="Name of the destination.")
    identifier: str = Field(description="Identifier type sent to identify each member, such as email or user_id.")
    identifier_values: Literal["latest", "all"] = Field(
        "latest", description="latest: the member's most recent value of that type. all: up to 3 values. Absent: latest."
    )
    traits: list[str] = Field(
        default_factory=list, description="Traits whose values are sent with each change. Absent: none.", json_schema_extra=SET
    )
    send_updates: StrictBool = Field(
        False, description="true: send an `updated` change when a sent trait changes for a member who stays. Absent: false."
    )


class AudienceSpec(SpecModel):
    """Who is in the audience: `include` minus `exclude`, over the candidates.

    Candidates are the profiles (or accounts) with at least one message before as_of.
    """

    entity: Literal["user", "account"] = Field("user", description="Members are user profiles or accounts. Absent: user.")
    include: Condition = Field(description="Condition tree a member meets.")
    exclude: Condition | None = Field(None, description="Profiles meeting this tree are removed. Absent: nobody is excluded.")
    holdout: Percent = Field(
        Percent("0%"),
        description="Share of members put in a stable control group: members everywhere, never sent. 0% to 50%. Absent: 0%.",
    )
    refresh: Schedule | None = Field(
        None,
        description="Intended recompute interval, a duration or a cron expression, recorded for a scheduler. "
        "`personas run` computes every selected resource on each call. Absent: defaults.refresh of personas.yaml.",
    )
    freshness: Duration | None = Field(
        None,
        description="Age of the last successful run after which the audience counts as stale, recorded for "
        "status reporting by a scheduler. Absent: never stale.",
    )
    destinations: list[AudienceDestination] = Field(
        default_factory=list, description="Where members are sent. Absent: computed, not sent.", json_schema_extra=SET
    )

    @field_validator("holdout", mode="before")
    @classmethod
    def _holdout_not_negative(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("-"):
            raise ValueError(f"holdout {value.strip()} is below 0%: it must be between 0% and 50%")
        return value

    @field_validator("holdout")
    @classmethod
    def _holdout_range(cls, value: Percent) -> Percent:
        if value.fraction > Decimal("0.5"):
            raise ValueError(f"holdout {value} is above the 50% maximum")
        return value


# --------------------------------------------------------------------------- destinations

def checked_url(value: str, problem: Callable[[str], str | None]) -> str:
    """Return `value` when `problem` finds nothing wrong with its literal parts; raise its message otherwise."""
    found = problem(value)
    if found:
        raise ValueError(found)
    return value


class MaxRemovals(SpecModel):
    """Removal guard: a run's removals are held back when they number at least
    `at_least` and more than `share` of the destination's last snapshot."""

    share: Percent = Field(Percent("20%"), description="Share of the last snapshot. Absent: 20%.")
    at_least: StrictInt = Field(10, ge=0, description="Removals below this number always pass. Absent: 10.")


class _DestinationBase(SpecModel):
    mode: Literal["diff", "mirror", "add_only"] = Field(
        "diff",
        description="diff: changes only. mirror: the full membership each run, removing what is no longer a member. "
        "add_only: entries only, never removals. Absent: diff.",
    )
    batch_size: StrictInt | None = Field(None, ge=1, le=100_000, description="Changes per request or write. Absent: the type's default (500 for webhook).")
    max_rate: Rate | None = Field(None, description="Most requests per unit of time, such as 20/s. Absent: no limit.")
    max_removals: MaxRemovals = Field(default_factory=MaxRemovals, description="The removal guard. Absent: 20% and at least 10.")
    consent: list[str] = Field(
        default_factory=list,
        description="Names of boolean traits; only members with every one true are sent, and a member losing one exits. Absent: no consent check.",
        json_schema_extra=SET,
    )


class WebhookDestination(_DestinationBase):
    """HTTP POST of versioned JSON batches of changes."""

    type: Literal["webhook"]
    url: str = Field(min_length=1, description="https or http URL. Shown as scheme and host only, since paths often carry tokens.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers. Credential headers (Authorization, Cookie, names with token, secret or key) accept only ${...} references.",
    )
    signing_secret: str | None = Field(
        None, description="A ${...} reference; when set, each request carries Personas-Signature (HMAC-SHA256). Absent: unsigned."
    )
    timeout: Duration = Field(Duration("30s"), description="Time allowed for one request, at least 1s. Absent: 30s.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return checked_url(value, webhook_url_problem)

    @field_validator("timeout")
    @classmethod
    def _timeout_at_least_a_second(cls, value: Duration) -> Duration:
        if value.seconds < 1:
            raise ValueError(f"timeout {value} is too short: it must be at least 1s")
        return value


class FileDestination(_DestinationBase):
    """Files in a folder: a full snapshot and a changes file per run, written atomically."""

    type: Literal["file"]
    path: str = Field(min_length=1, description="Folder, relative to the project folder unless absolute.")
    format: Literal["csv", "jsonl"] = Field("csv", description="File format. Absent: csv.")


class SqlTableDestination(_DestinationBase):
    """Membership rows upserted into a table of any SQLAlchemy database."""

    type: Literal["sql_table"]
    url: str = Field(min_length=1, description="SQLAlchemy URL; a password must be a ${...} reference.")
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="Table name; created when missing.")
    schema_: str | None = Field(None, alias="schema", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="Schema. Absent: the database's default.")

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return checked_url(value, database_url_problem)


class RedisDestination(_DestinationBase):
    """Redis sets: per audience its members, and per identifier value its audiences."""

    type: Literal["redis"]
    url: str = Field(min_length=1, description="redis://, rediss:// or unix:// URL; a password must be a ${...} reference.")
    key_prefix: str = Field("personas:", description="Prefix of every key personas writes. Absent: `personas:`.")

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return checked_url(value, redis_url_problem)


DestinationSpec = Annotated[
    Union[WebhookDestination, FileDestination, SqlTableDestination, RedisDestination],
    Field(discriminator="type"),
]

DESTINATION_TYPES = ("webhook", "file", "sql_table", "redis")


# --------------------------------------------------------------------------- envelope

class Metadata(SpecModel):
    name: str = Field(pattern=NAME_PATTERN, description="Lower-case name, unique per kind: letters, digits, underscores, up to 63 characters.")
    description: str | None = Field(None, description='What it is for. Absent, null and "" all mean no description.')
    owner: str | None = Field(None, description="Team or person responsible. Absent: none.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free key/value labels, selectable as label:key=value.")
    protected: StrictBool = Field(False, description="true: plan refuses to delete or replace it. Absent: false.")
    previous_names: list[str] = Field(
        default_factory=list,
        description="Former names: history, holdout, memberships and destination state carry over. Absent: none.",
        json_schema_extra=SET,
    )

    @field_validator("description", "owner")
    @classmethod
    def _empty_is_absent(cls, value: str | None) -> str | None:
        return value if value else None

    @field_validator("previous_names")
    @classmethod
    def _names_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"previous name {name!r} is not a valid name ({NAME_PATTERN})")
        return value


class _ResourceBase(SpecModel):
    api_version: Literal["personas/v1"] = Field(alias="apiVersion", description="Always personas/v1.")
    metadata: Metadata

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def address(self) -> str:
        return f"{self.kind.lower()}.{self.metadata.name}"


class Trait(_ResourceBase):
    kind: Literal["Trait"]
    spec: TraitSpec


class Audience(_ResourceBase):
    kind: Literal["Audience"]
    spec: AudienceSpec


class Destination(_ResourceBase):
    kind: Literal["Destination"]
    spec: DestinationSpec


Resource = Annotated[Union[Trait, Audience, Destination], Field(discriminator="kind")]
RESOURCE_KINDS = {"Trait": Trait, "Audience": Audience, "Destination": Destination}


def parse_timestamp(value: str) -> datetime:
    """Read an ISO 8601 timestamp or date; without a zone it is UTC."""
    from datetime import timezone

    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
