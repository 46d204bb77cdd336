"""Alembic migrations of the state store's schema, run programmatically by `reconciler.state.schema`.

Revision ids are zero-padded schema versions ("0001", "0002"), so the
version a store is at reads straight from alembic's version table.
"""
