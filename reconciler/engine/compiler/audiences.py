"""Audiences as SELECTs of (subject_id, holdout).

Members are the candidates meeting `include` and not `exclude`. The holdout
flag comes from the first 32 bits of md5("<resource id>:<subject id>"),
compared as 8 lower-case hex digits against the share: a string comparison
that DuckDB, PostgreSQL and the other warehouses evaluate identically, so a
member's place in the control group never depends on the warehouse or on
who else is a member.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from reconciler.engine.compiler.conditions import predicate
from reconciler.engine.compiler.context import Context
from reconciler.engine.compiler.functions import Md5Hex
from reconciler.spec.models import Audience

HASH_DIGITS = 8


def holdout_threshold(share: Decimal) -> str:
    """Hex digits below which a hash falls in the control group (share of 2**32)."""
    return format(int(share * (16**HASH_DIGITS)), f"0{HASH_DIGITS}x")


def holdout_flag(key: str, subject: ColumnElement, share: Decimal) -> ColumnElement:
    if share <= 0:
        return sa.false()
    digest = Md5Hex(sa.literal(f"{key}:") + sa.cast(subject, sa.Text))
    return sa.func.substr(digest, 1, HASH_DIGITS) < holdout_threshold(share)


def audience_select(ctx: Context, audience: Audience) -> sa.Select:
    """(subject_id, holdout) of every member of `audience` at ctx.as_of."""
    spec = audience.spec
    candidates = ctx.candidates(spec.entity).subquery()
    subject = candidates.c.subject_id
    test = predicate(ctx, spec.include, spec.entity, subject)
    if spec.exclude is not None:
        test = sa.and_(test, sa.not_(predicate(ctx, spec.exclude, spec.entity, subject)))
    flag = holdout_flag(ctx.resource_key(audience.address), subject, spec.holdout.fraction)
    return sa.select(subject.label("subject_id"), flag.label("holdout")).where(test)
