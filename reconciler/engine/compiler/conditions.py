"""Condition trees as boolean SQL over a subject column.

`predicate(ctx, condition, entity, subject)` returns an expression that is
true exactly for the subjects meeting the condition. Every kind tests
membership in a subquery without NULLs, so the predicate is never NULL:
`not` is then the exact complement within the candidates, and `all` / `any`
are plain AND / OR. Membership is written `EXISTS (... WHERE id = subject)`
rather than `subject IN (...)`: PostgreSQL plans `NOT EXISTS` as an anti
join, but `NOT IN` over a subquery larger than work_mem as a nested loop.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from reconciler.engine.compiler.context import Context
from reconciler.engine.compiler.functions import AddSeconds
from reconciler.engine.compiler.operators import value_predicate
from reconciler.engine.compiler.traits import event_filter
from reconciler.spec import models as m
from reconciler.spec.models import trait_value_type


def member_of(subject: ColumnElement, query: sa.Select) -> ColumnElement:
    """Test whether `subject` is among the values of the first column of `query`, a column without NULL."""
    rows = query.subquery()
    return sa.exists().where(list(rows.c)[0] == subject)


def predicate(ctx: Context, condition: Any, entity: str, subject: ColumnElement) -> ColumnElement:
    """Return a test that is true for the subjects (profiles or accounts, by `entity`) meeting `condition`."""
    if isinstance(condition, m.AllCondition):
        return sa.and_(*(predicate(ctx, item, entity, subject) for item in condition.all))
    if isinstance(condition, m.AnyCondition):
        return sa.or_(*(predicate(ctx, item, entity, subject) for item in condition.any))
    if isinstance(condition, m.NotCondition):
        return sa.not_(predicate(ctx, condition.not_, entity, subject))
    if isinstance(condition, m.EventCondition):
        return _event(ctx, condition, entity, subject)
    if isinstance(condition, m.TraitCondition):
        return _trait(ctx, condition, subject)
    if isinstance(condition, m.AudienceCondition):
        members = ctx.audience_relation(condition.audience)
        return member_of(subject, sa.select(members.c.subject_id))
    if isinstance(condition, m.SequenceCondition):
        return _sequence(ctx, condition, entity, subject)
    if isinstance(condition, (m.AnyUserCondition, m.AllUsersCondition, m.NoUserCondition)):
        return _users(ctx, condition, subject)
    raise TypeError(f"unknown condition {type(condition).__name__}")


def _count_holds(count: m.Count, value: Any) -> Any:
    """Apply the count bounds to `value`, a number or a SQL expression."""
    tests = []
    if count.equals is not None:
        tests.append(value == count.equals)
    if count.gt is not None:
        tests.append(value > count.gt)
    if count.gte is not None:
        tests.append(value >= count.gte)
    if count.lt is not None:
        tests.append(value < count.lt)
    if count.lte is not None:
        tests.append(value <= count.lte)
    if isinstance(value, int):
        return all(tests)
    return sa.and_(*tests)


def _event(ctx: Context, condition: m.EventCondition, entity: str, subject: ColumnElement) -> ColumnElement:
    events = ctx.events(entity)
    column = ctx.subject_column(entity)
    clauses = event_filter(ctx, entity, condition.event, condition.where)
    clauses.append(ctx.in_window(events.c.timestamp, condition.window))
    matching = sa.select(column).where(*clauses)
    if condition.count is None:
        return member_of(subject, matching)
    grouped = matching.group_by(column)
    if _count_holds(condition.count, 0):
        # Subjects without matching events have a count of 0, which passes: exclude only those failing.
        failing = grouped.having(sa.not_(_count_holds(condition.count, sa.func.count())))
        return sa.not_(member_of(subject, failing))
    return member_of(subject, grouped.having(_count_holds(condition.count, sa.func.count())))


def _trait(ctx: Context, condition: m.TraitCondition, subject: ColumnElement) -> ColumnElement:
    values = ctx.trait_relation(condition.trait)
    if condition.operator == "missing":
        return sa.not_(member_of(subject, sa.select(values.c.subject_id).where(values.c.value.isnot(None))))
    value_type = trait_value_type(ctx.trait(condition.trait).spec)
    test = value_predicate(values.c.value, value_type, condition, ctx.as_of)
    return member_of(subject, sa.select(values.c.subject_id).where(test))


def _step_rows(ctx: Context, step: m.SequenceStep, entity: str, window: m.Window | None) -> sa.Select:
    events = ctx.events(entity)
    clauses = event_filter(ctx, entity, step.event, step.where)
    clauses.append(ctx.in_window(events.c.timestamp, step.window))
    if window is not None:
        clauses.append(ctx.in_window(events.c.timestamp, window))
    return sa.select(
        ctx.subject_column(entity).label("subject_id"),
        events.c.timestamp.label("ts"),
        events.c.message_id.label("message_id"),
    ).where(*clauses)


def _sequence(ctx: Context, condition: m.SequenceCondition, entity: str, subject: ColumnElement) -> ColumnElement:
    """Steps in (timestamp, messageId) order, each within `within` of the previous one.

    For each step, an event is reached when some reached event of the previous
    step comes strictly before it; the latest such event is the one to test
    against `within`. A running MAX over both steps' events, ordered by
    (timestamp, messageId), finds it without pairing every two events.
    """
    reached = _step_rows(ctx, condition.sequence[0], entity, condition.window)
    for step in condition.sequence[1:]:
        previous = reached.subquery()
        following = _step_rows(ctx, step, entity, None).subquery()
        # kind 0 (this step) sorts before kind 1 (previous step) at an equal key, so one
        # event matching both steps never counts as its own predecessor.
        both = sa.union_all(
            sa.select(following.c.subject_id, following.c.ts, following.c.message_id, sa.literal(0).label("kind")),
            sa.select(previous.c.subject_id, previous.c.ts, previous.c.message_id, sa.literal(1).label("kind")),
        ).subquery()
        latest_previous = sa.func.max(sa.case((both.c.kind == 1, both.c.ts))).over(
            partition_by=both.c.subject_id,
            order_by=(both.c.ts, both.c.message_id, both.c.kind),
            rows=(None, -1),
        )
        marked = sa.select(
            both.c.subject_id, both.c.ts, both.c.message_id, both.c.kind, latest_previous.label("previous_ts")
        ).subquery()
        tests = [marked.c.kind == 0, marked.c.previous_ts.isnot(None)]
        if step.within is not None:
            tests.append(marked.c.ts <= AddSeconds(marked.c.previous_ts, step.within.seconds))
        reached = sa.select(marked.c.subject_id, marked.c.ts, marked.c.message_id).where(*tests)
    final = reached.subquery()
    return member_of(subject, sa.select(final.c.subject_id))


def _users(ctx: Context, condition: Any, subject: ColumnElement) -> ColumnElement:
    """any_user / all_users / no_user: account conditions over the account's users."""
    pairs = ctx.account_users().subquery()
    users = ctx.candidates("user")
    known = sa.select(pairs.c.account_id).where(member_of(pairs.c.profile_id, users))
    if isinstance(condition, m.AllUsersCondition):
        failing = known.where(sa.not_(predicate(ctx, condition.all_users, "user", pairs.c.profile_id)))
        return sa.and_(member_of(subject, known), sa.not_(member_of(subject, failing)))
    inner = condition.any_user if isinstance(condition, m.AnyUserCondition) else condition.no_user
    meeting = known.where(predicate(ctx, inner, "user", pairs.c.profile_id))
    if isinstance(condition, m.AnyUserCondition):
        return member_of(subject, meeting)
    return sa.not_(member_of(subject, meeting))
