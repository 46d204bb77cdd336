"""Schema version 1: the control plane (meta, resources, history, tombstones, audit log, locks).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON()
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("lineage", sa.String(36), nullable=False),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("hmac_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "resources",
        sa.Column("address", sa.String(200), primary_key=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("previous_names", Json, nullable=False),
        sa.Column("source_file", sa.Text, nullable=True),
        sa.Column("secret_hashes", Json, nullable=False),
        sa.Column("applied_at", Time, nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "resource_versions",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("previous_address", sa.String(200), nullable=True),
        sa.Column("replaced_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("spec", Json, nullable=True),
        sa.Column("spec_hash", sa.String(64), nullable=True),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("applied_at", Time, nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_resource_versions_id", "resource_versions", ["id"])
    op.create_index("ix_resource_versions_address", "resource_versions", ["address"])
    op.create_table(
        "tombstones",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("spec", Json, nullable=True),
        sa.Column("deleted_at", Time, nullable=False),
        sa.Column("deleted_serial", sa.Integer, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", Time, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_branch", sa.String(200), nullable=True),
        sa.Column("serial_before", sa.Integer, nullable=False),
        sa.Column("serial_after", sa.Integer, nullable=False),
        sa.Column("plan", Json, nullable=False),
        sa.Column("summary", Json, nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("since", Time, nullable=False),
    )


def downgrade() -> None:
    for table in ("locks", "audit_log", "tombstones", "resource_versions", "resources", "meta"):
        op.drop_table(table)
