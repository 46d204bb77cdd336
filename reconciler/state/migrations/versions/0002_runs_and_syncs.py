"""Schema version 2: data-plane bookkeeping (runs, their resources, sync records).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)
Json = sa.JSON()
COUNTS = (
    "entered",
    "exited",
    "updated",
    "sent",
    "acknowledged",
    "rejected",
    "held_back",
    "members",
    "eligible",
    "non_consented",
)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("as_of", Time, nullable=False),
        sa.Column("selectors", Json, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.Column("started_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "run_resources",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("address", sa.String(200), primary_key=True),
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_run_resources_resource_id", "run_resources", ["resource_id"])
    op.create_table(
        "sync_records",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(200), nullable=False),
        sa.Column("audience_id", sa.String(36), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("destination_id", sa.String(36), nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(count, sa.BigInteger, nullable=False) for count in COUNTS),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_sync_records_run_id", "sync_records", ["run_id"])
    op.create_index("ix_sync_records_pair", "sync_records", ["audience", "destination"])


def downgrade() -> None:
    for table in ("sync_records", "run_resources", "runs"):
        op.drop_table(table)
