"""Alembic environment: runs migrations on the connection `reconciler.state.schema` hands over.

The caller owns the transaction (and, on PostgreSQL, the advisory lock that
serialises concurrent upgrades), so nothing here commits.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
