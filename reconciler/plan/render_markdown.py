"""A plan as a pull-request comment: summary first, a banner for deletes and replaces, details folded.

GitHub rejects comments over 65,536 characters. The summary, the banner
and the identity line always fit. Change details are added in order until
the budget is spent, and a closing line gives the number left out.
"""

from __future__ import annotations

from typing import Any

from reconciler.plan.fields import format_path, leaves
from reconciler.plan.model import FieldChange, Plan, ResourceChange
from reconciler.plan.render_text import (
    IDENTITY_LINE,
    SYMBOLS,
    downstream_text,
    format_value,
    included_text,
    is_mapping_list,
    no_changes_text,
    summary_line,
    value_lines,
)
from reconciler.spec.diagnostics import plural

MAX_CHARACTERS = 65_536
# Room kept for the closing lines and the fences of the last open section.
_RESERVE = 1_000

_TITLES = {"create": "Create", "update": "Update", "replace": "Replace", "delete": "Delete", "move": "Move"}


def render_markdown(plan: Plan, *, limit: int = MAX_CHARACTERS) -> str:
    head = _head(plan)
    if plan.is_empty:
        return head
    budget = limit - _RESERVE
    parts = [head]
    size = len(head)
    left_out = 0
    for action in ("create", "update", "replace", "delete", "move"):
        changes = plan.changes(action)
        if not changes:
            continue
        opening = f"<details{' open' if action in ('replace', 'delete') else ''}><summary><b>{_TITLES[action]} ({len(changes)})</b></summary>\n\n```diff\n"
        closing = "```\n\n</details>\n\n"
        blocks = []
        used = len(opening) + len(closing)
        for change in changes:
            block = _change_block(change)
            if left_out or size + used + len(block) > budget:
                left_out += 1
                continue
            blocks.append(block)
            used += len(block)
        if blocks:
            parts.append(opening + "".join(blocks) + closing)
            size += used
    if left_out:
        parts.append(
            f"_{left_out} change{'s' if left_out != 1 else ''} not shown to keep this comment under GitHub's size limit; "
            "the job log and `personas show` on the saved plan list every change._\n"
        )
    return "".join(parts)


def _head(plan: Plan) -> str:
    lines = ["### personas plan", ""]
    if plan.is_empty:
        lines.append(no_changes_text(plan))
        return "\n".join(lines) + "\n"
    destructive = plan.changes("delete") + plan.changes("replace")
    if destructive:
        lines.append("> [!WARNING]")
        lines.append(
            f"> This plan deletes {plural(len(plan.changes('delete')), 'resource')} and replaces "
            f"{plural(len(plan.changes('replace')), 'resource')}. Deleted audiences send their members' exits on the next run; replaced ones close their "
            "membership history and resync their destinations."
        )
        listed = ", ".join(f"`{change.address}`" for change in destructive[:20])
        more = f" and {len(destructive) - 20} more" if len(destructive) > 20 else ""
        lines.append(f"> Affected: {listed}{more}.")
        lines.append("")
    lines.append(f"**{summary_line(plan)}**")
    if plan.identity_change is not None and plan.identity_change.action == "update":
        lines.extend(["", f"**{IDENTITY_LINE}**", "", "```diff"])
        for field in plan.identity_change.changed_fields:
            lines += diff_lines(field, indent="")
        lines.append("```")
    for warning in plan.warnings:
        lines.extend(["", f"_{warning}_"])
    lines.append("")
    return "\n".join(lines) + "\n"


def diff_lines(field: FieldChange, indent: str = "      ") -> list[str]:
    """Write one changed field as diff lines: `-` before, `+` after, a list of mappings one item a line."""
    note = f"  {field.note}" if field.note else ""
    if field.before == field.after:
        return _side(" ", indent, field.path, field.after, note)
    return _side("-", indent, field.path, field.before, "") + _side("+", indent, field.path, field.after, note)


def _side(mark: str, indent: str, path: str, value: Any, note: str) -> list[str]:
    """Return the lines of one side of a change, each starting with the diff mark."""
    prefix = f"{mark:<2}{indent}"
    if not is_mapping_list(value):
        return [f"{prefix}{path}: {format_value(value)}{note}"]
    return [f"{prefix}{path}:{note}"] + [f"{prefix}  {line}" for line in value_lines(value)]


def _change_block(change: ResourceChange) -> str:
    """Write one change for a diff fence, which colours lines starting with + green and - red."""
    title = f"{change.previous_address} -> {change.address}" if change.previous_address else change.address
    where = f"  ({change.source_file})" if change.source_file else ""
    lines = [f"{SYMBOLS[change.action]:<3} {title}{where}", f"      {change.reason}"]
    if change.included_by:
        lines.append(f"      {included_text(change)}")
    if change.action == "create" and change.after is not None:
        for path, value in leaves(change.after.get("spec", {}), ("spec",)):
            lines.append(f"+       {format_path(path)}: {format_value(value)}")
    for field in change.changed_fields:
        lines += diff_lines(field)
    if change.downstream:
        lines.append(f"      downstream: {downstream_text(change.downstream)}")
    for pair, members in change.held_members.items():
        lines.append(f"      {pair} holds {members:,} members; the next run sends their exits")
    return "\n".join(lines).replace("```", "'''") + "\n"
