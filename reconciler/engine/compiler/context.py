"""The compiler's inputs: warehouse relations, evaluation time, and lookups of other traits and audiences.

`Relations` names the warehouse relations (the column contract of the
warehouse: events, profiles, identifiers, account users). `Context` adds the
evaluation time and the specs; it hands out the relation of any trait or
audience by name. By default that is the resource compiled inline, as a CTE,
which is what `preview` needs because it stores nothing. `stored_traits` and
`stored_audiences` switch named resources to the results tables, which a run
fills in dependency order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from reconciler.engine.compiler.operators import naive_utc
from reconciler.spec.models import Audience, Trait, Window, trait_value_type

VALUE_COLUMNS = {
    "number": "value_number",
    "string": "value_text",
    "boolean": "value_boolean",
    "timestamp": "value_timestamp",
    "list": "value_json",
}


@dataclass(frozen=True)
class Relations:
    """The warehouse relations, with the columns of the warehouse contract."""

    events: FromClause
    profiles: FromClause
    identifiers: FromClause
    account_users: FromClause


@dataclass
class Context:
    """One evaluation: relations, as_of, the specs by name, and where results live."""

    relations: Relations
    as_of: datetime
    traits: dict[str, Trait] = field(default_factory=dict)
    audiences: dict[str, Audience] = field(default_factory=dict)
    resource_ids: dict[str, str] = field(default_factory=dict)  # address -> stable id
    stored_traits: dict[str, str] = field(default_factory=dict)  # trait name -> id in personas_trait_values
    stored_audiences: dict[str, str] = field(default_factory=dict)  # audience name -> id in personas_audience_members
    sql_columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # sql trait name -> its two column names
    _inline: dict[str, FromClause] = field(default_factory=dict, repr=False)
    _account_events: FromClause | None = field(default=None, repr=False)
    _compiling: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.as_of = naive_utc(self.as_of)

    # ----------------------------------------------------------------- time

    def window_bounds(self, window: Window | None) -> tuple[datetime | None, datetime]:
        """[start, end) of a window as instants; start None means all history."""
        if window is None:
            return None, self.as_of
        start = self.as_of - timedelta(seconds=window.from_.seconds)
        return start, self.as_of - timedelta(seconds=window.to.seconds)

    def in_window(self, timestamp: ColumnElement, window: Window | None) -> ColumnElement:
        start, end = self.window_bounds(window)
        if start is None:
            return timestamp < end
        return sa.and_(timestamp >= start, timestamp < end)

    # ----------------------------------------------------------------- subjects

    def events(self, entity: str) -> FromClause:
        """Return the events that count for a subject of `entity`.

        A user's events are the profile's own. An account's events are every
        event of its users (from group calls before as_of), with `group_id`
        naming the account; a user in two accounts counts for both.
        """
        if entity == "user":
            return self.relations.events
        if self._account_events is None:
            events = self.relations.events
            members = self.account_users().subquery("account_members")
            columns = [column for column in events.c if column.name != "group_id"]
            self._account_events = (
                sa.select(*columns, members.c.account_id.label("group_id"))
                .select_from(events.join(members, members.c.profile_id == events.c.profile_id))
                .subquery("account_events")
            )
        return self._account_events

    def subject_column(self, entity: str) -> ColumnElement:
        """Return the column of `events(entity)` that names whom an event counts for."""
        events = self.events(entity)
        return events.c.profile_id if entity == "user" else events.c.group_id

    def candidates(self, entity: str) -> sa.Select:
        """Profiles (or accounts) with at least one message before as_of, as `subject_id`."""
        if entity == "user":
            profiles = self.relations.profiles
            return sa.select(profiles.c.profile_id.label("subject_id")).where(
                profiles.c.profile_id.isnot(None), profiles.c.first_seen < self.as_of
            ).distinct()
        events = self.relations.events
        return sa.select(events.c.group_id.label("subject_id")).where(
            events.c.group_id.isnot(None), events.c.timestamp < self.as_of
        ).distinct()

    def account_users(self) -> sa.Select:
        """Select the (account_id, profile_id) pairs of group calls before as_of.

        NOTE: the warehouse's relation may have no first_seen column; then a
        user who joined an account after as_of counts as its user already.
        """
        users = self.relations.account_users
        query = sa.select(users.c.account_id, users.c.profile_id).where(
            users.c.account_id.isnot(None), users.c.profile_id.isnot(None)
        )
        if "first_seen" in users.c:
            query = query.where(users.c.first_seen < self.as_of)
        return query

    # ----------------------------------------------------------------- other resources

    def resource_key(self, address: str) -> str:
        """Return the stable id of an applied resource, else its address (the holdout hash key)."""
        return self.resource_ids.get(address, address)

    def trait(self, name: str) -> Trait:
        try:
            return self.traits[name]
        except KeyError:
            raise KeyError(f"trait.{name} is not defined") from None

    def audience(self, name: str) -> Audience:
        try:
            return self.audiences[name]
        except KeyError:
            raise KeyError(f"audience.{name} is not defined") from None

    def trait_relation(self, name: str) -> FromClause:
        """Return a relation (subject_id, value) of one trait's values, typed by its value type."""
        if name in self.stored_traits:
            from reconciler.engine.results import trait_values

            column = trait_values.c[VALUE_COLUMNS[trait_value_type(self.trait(name).spec)]]
            return (
                sa.select(trait_values.c.subject_id, column.label("value"))
                .where(trait_values.c.trait_id == self.stored_traits[name])
                .subquery()
            )
        key = f"trait.{name}"
        if key not in self._inline:
            from reconciler.engine.compiler.traits import trait_values_select

            self._inline[key] = trait_values_select(self, self.trait(name)).cte(f"trait_{name}")
        return self._inline[key]

    def audience_relation(self, name: str) -> FromClause:
        """Return a relation (subject_id, holdout) of one audience's members."""
        if name in self.stored_audiences:
            from reconciler.engine.results import audience_members

            return (
                sa.select(audience_members.c.subject_id, audience_members.c.holdout)
                .where(audience_members.c.audience_id == self.stored_audiences[name])
                .subquery()
            )
        key = f"audience.{name}"
        if key not in self._inline:
            from reconciler.engine.compiler.audiences import audience_select

            # Validation rejects cycles; this guard keeps a cycle in unvalidated specs from recursing forever.
            if key in self._compiling:
                raise ValueError(
                    f"dependency cycle: {' -> '.join(self._compiling + [key])}; remove one of these references"
                )
            self._compiling.append(key)
            try:
                self._inline[key] = audience_select(self, self.audience(name)).cte(f"audience_{name}")
            finally:
                self._compiling.pop()
        return self._inline[key]
