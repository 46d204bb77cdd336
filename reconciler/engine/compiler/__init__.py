"""Traits and audiences compiled to SQLAlchemy Core, run inside the warehouse.

Modules: `functions` (dialect-specific SQL: JSON access, safe casts, lists,
hashing), `operators`, `context` (relations, time, name lookups), `traits`,
`conditions`, `audiences`.
"""

from reconciler.engine.compiler.audiences import audience_select
from reconciler.engine.compiler.context import VALUE_COLUMNS, Context, Relations
from reconciler.engine.compiler.traits import TraitScan, build_scan, scan_key, scan_values, trait_values_select

__all__ = [
    "VALUE_COLUMNS",
    "Context",
    "Relations",
    "TraitScan",
    "audience_select",
    "build_scan",
    "scan_key",
    "scan_values",
    "trait_values_select",
]
