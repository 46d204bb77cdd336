"""Making a plan for a loaded project: open the state, read it, diff.

Reading the state is the only I/O here, and it writes nothing: a store
never applied reads as empty, and on SQLite its file is not created.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler import __version__
from reconciler.plan.diff import DesiredState, build_plan, desired_state
from reconciler.plan.model import Plan


def open_state(project: Any) -> Any:
    """Open the project's state store (personas.yaml `state:`, which defaults to PERSONAS_STATE_URL)."""
    from reconciler.state import open_store

    return open_store(project.resolve_url(project.settings.state))


def read_state(store: Any) -> Any:
    """Read the applied state; a store never applied reads as empty, one at another schema version is refused."""
    if not store.exists():
        return store.read()
    store.check_schema()
    return store.read()


def make_plan(
    project: Any,
    store: Any,
    snapshot: Any,
    *,
    env: Mapping[str, str] | None = None,
    targets: Iterable[str] = (),
    excludes: Iterable[str] = (),
    desired: DesiredState | None = None,
) -> tuple[Plan, DesiredState]:
    """The plan from the project's specs to `snapshot`, and the desired state it was built from."""
    desired = desired or desired_state(project)
    digest = store.secret_digest if snapshot.lineage is not None else None
    plan = build_plan(
        desired,
        snapshot,
        env=os.environ if env is None else env,
        digest=digest,
        personas_version=__version__,
        targets=targets,
        excludes=excludes,
    )
    return plan, desired
