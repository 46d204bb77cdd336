"""Apply as a list of named steps: what `plan` describes and `apply` runs.

Each step is a function of an `ApplyContext`. `describe_steps` describes
what each would do for a plan, without running anything. The steps run in order
under the state lock the caller holds:

1. check-plan       a saved plan still matches the state and the specs
2. resolve-secrets  every `${NAME}` of the changed resources is set; secret
                    values are digested (the digests, never the values, are kept)
3. write-state      one transaction: the changes, the serial bump (only if the
                    serial is still the one read) and the audit entry
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SpecError, StalePlanError
from reconciler.plan import secrets
from reconciler.plan.diff import DesiredState
from reconciler.plan.fields import format_path
from reconciler.plan.model import IDENTITY_ADDRESS, Plan
from reconciler.spec.interpolation import unset_variables

log = logging.getLogger(__name__)


@dataclass
class ApplyContext:
    """The inputs and results of the steps. `saved` is the plan read from a plan file, if any."""

    plan: Plan
    desired: DesiredState
    snapshot: Any
    store: Any
    env: Mapping[str, str]
    project_root: Path | None = None
    saved: Plan | None = None
    secret_hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    new_serial: int | None = None


@dataclass(frozen=True)
class ApplyStep:
    name: str
    run: Callable[[ApplyContext], None]
    describe: Callable[[Plan], str | None]


def check_saved_plan(saved: Plan, current: Plan) -> None:
    """Raise StalePlanError when the state or specs moved since the saved plan was made, naming what moved."""
    if saved.lineage is not None and saved.lineage != current.lineage:
        raise StalePlanError(
            f"the saved plan was made for state lineage {saved.lineage}, but the state now has lineage {current.lineage}",
            hint="The plan belongs to another state store. Make a new plan against this one: `personas plan --out FILE`.",
        )
    if saved.serial != current.serial:
        raise StalePlanError(
            f"the saved plan is stale: it was made at state serial {saved.serial}, and the state is now at serial "
            f"{current.serial} (someone applied in between)",
            hint="Make a new plan and review it: `personas plan --out FILE`.",
        )
    if saved.specs_hash != current.specs_hash:
        moved = _differing_addresses(saved, current)
        which = f" ({', '.join(moved)})" if moved else ""
        raise StalePlanError(
            f"the saved plan is stale: the specs changed since it was made{which}",
            hint="Make a new plan from the current specs: `personas plan --out FILE`.",
        )
    if saved.fingerprint() != current.fingerprint():
        moved = _differing_addresses(saved, current)
        raise StalePlanError(
            "the saved plan no longer matches what apply would do now: changes differ for "
            + (", ".join(moved) or "the identity rules")
            + " (a secret value in the environment differs from when the plan was made)",
            hint="Make a new plan in this environment: `personas plan --out FILE`.",
        )


def _differing_addresses(saved: Plan, current: Plan) -> list[str]:
    before = {change.address: change.fingerprint() for change in saved.resource_changes}
    after = {change.address: change.fingerprint() for change in current.resource_changes}
    moved = sorted(address for address in set(before) | set(after) if before.get(address) != after.get(address))
    if (saved.identity_change and saved.identity_change.fingerprint()) != (
        current.identity_change and current.identity_change.fingerprint()
    ):
        moved.append(IDENTITY_ADDRESS)
    return moved


def _check_plan(context: ApplyContext) -> None:
    if context.saved is not None:
        check_saved_plan(context.saved, context.plan)


def _describe_check(plan: Plan) -> str:
    return (
        f"check-plan: confirm the state is still at lineage {plan.lineage or '(new)'} serial {plan.serial} "
        "and the specs still hash as planned"
    )


def _resolve_secrets(context: ApplyContext) -> None:
    """Stop before writing when a changed resource references an unset variable; digest its secrets."""
    missing = []
    for change in context.plan.resource_changes:
        if change.action == "delete":
            continue
        resource = context.desired.resources[change.address]
        for path, names in _unset_references(resource.spec, context.env):
            missing.append(f"{', '.join(names)} (in {change.address} {path})")
        if not missing:
            digests = secrets.digest_secrets(resource.spec, context.env, context.store.secret_digest)
            context.secret_hashes[change.address] = digests.digests
    if missing:
        raise SpecError(
            "apply needs these environment variables, which are not set: " + "; ".join(missing),
            hint="Set them (or give the references a default, as in ${NAME:-default}) and run apply again. Nothing was written.",
        )


def _unset_references(spec: Any, env: Mapping[str, str], path: tuple[Any, ...] = ()) -> list[tuple[str, list[str]]]:
    if isinstance(spec, str):
        names = unset_variables(spec, env)
        return [(format_path(path), names)] if names else []
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, list):
        items = list(enumerate(spec))
    else:
        return []
    found = []
    for key, value in items:
        found.extend(_unset_references(value, env, path + (key,)))
    return found


def _describe_secrets(plan: Plan) -> str | None:
    count = sum(1 for change in plan.resource_changes if change.action != "delete")
    if not count:
        return None
    return (
        f"resolve-secrets: check the environment variables of {count} changed resource{'s' if count != 1 else ''} "
        "are set, and keep a keyed digest of each secret value"
    )


def _write_state(context: ApplyContext) -> None:
    from reconciler.state.records import AuditEntry

    changes = applied_changes(context.plan, context.desired, context.snapshot, context.secret_hashes)
    commit, branch = git_revision(context.project_root)
    audit = AuditEntry(plan=context.plan.to_dict(), git_commit=commit, git_branch=branch)
    context.new_serial = context.store.apply(
        expected_serial=context.plan.serial, lineage=context.plan.lineage, changes=changes, audit=audit
    )
    for change in changes:
        log.info("%s %s", change.action, change.address)
    log.info("applied %d changes: serial %s -> %s", len(changes), context.plan.serial, context.new_serial)


def _describe_write(plan: Plan) -> str:
    count = len(plan.resource_changes) + (1 if plan.identity_change else 0)
    return (
        f"write-state: in one transaction, write {count} change{'s' if count != 1 else ''}, move the serial from "
        f"{plan.serial} to {plan.serial + 1} only if it is still {plan.serial}, and record the audit entry"
    )


STEPS: tuple[ApplyStep, ...] = (
    ApplyStep("check-plan", _check_plan, _describe_check),
    ApplyStep("resolve-secrets", _resolve_secrets, _describe_secrets),
    ApplyStep("write-state", _write_state, _describe_write),
)


def describe_steps(plan: Plan) -> list[dict[str, str]]:
    """Describe what apply would do for `plan`, step by step, without doing it."""
    if plan.is_empty:
        return []
    described = []
    for step in STEPS:
        text = step.describe(plan)
        if text:
            described.append({"name": step.name, "description": text.split(": ", 1)[1]})
    return described


def run_steps(context: ApplyContext) -> int:
    """Run every step in order and return the new serial. Nothing is written unless every check passes."""
    for step in STEPS:
        log.debug("apply step %s", step.name)
        step.run(context)
    assert context.new_serial is not None
    return context.new_serial


def applied_changes(
    plan: Plan, desired: DesiredState, snapshot: Any, secret_hashes: Mapping[str, dict[str, str]]
) -> list[Any]:
    """Build the state store's `AppliedChange` list for a plan, with full (unmasked) specs from the desired state."""
    from reconciler.state.records import AppliedChange

    changes = []
    for change in plan.resource_changes:
        if change.action == "delete":
            record = snapshot.resources[change.address]
            changes.append(
                AppliedChange(
                    action="delete", address=change.address, kind=record.kind, name=record.name,
                    protected=record.protected, previous_names=list(record.previous_names),
                    source_file=record.source_file,
                )
            )
            continue
        resource = desired.resources[change.address]
        fields = dict(
            address=change.address, kind=resource.kind, name=resource.name, spec=resource.spec,
            spec_hash=resource.spec_hash, protected=resource.protected, previous_names=list(resource.previous_names),
            source_file=resource.source_file, secret_hashes=dict(secret_hashes.get(change.address, {})),
        )
        if change.action == "replace" and change.previous_address:
            # A rename that also needs a replace: move first, so the history links both names, then replace.
            changes.append(AppliedChange(action="move", previous_address=change.previous_address, **fields))
            changes.append(AppliedChange(action="replace", **fields))
            continue
        changes.append(AppliedChange(action=change.action, previous_address=change.previous_address, **fields))
    if plan.identity_change is not None:
        identity = plan.identity_change
        changes.append(
            AppliedChange(
                action=identity.action, address=IDENTITY_ADDRESS, kind="Identity", name="identity",
                spec=desired.identity, spec_hash=identity.after_hash,
            )
        )
    return changes


def git_revision(root: Path | None) -> tuple[str | None, str | None]:
    """Return (commit, branch) of the repository containing `root`, or (None, None) outside one or without git."""
    if root is None:
        return None, None
    return _git(root, "rev-parse", "HEAD"), _git(root, "rev-parse", "--abbrev-ref", "HEAD")


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value and value != "HEAD" else None
