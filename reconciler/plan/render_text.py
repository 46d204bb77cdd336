"""A plan as text for a terminal: grouped by action, field by field, then the summary line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reconciler.plan.fields import format_path, leaves
from reconciler.plan.model import IDENTITY_ADDRESS, Plan, ResourceChange

Style = Callable[..., str]

NO_CHANGES = "No changes. The applied state matches the specs."
IDENTITY_LINE = "Identity rules change: every audience is affected; the next run re-resolves identities from scratch."

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "move": ">"}
_COLORS = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "move": "cyan"}
_TITLES = {
    "create": "To create",
    "update": "To update",
    "replace": "To replace",
    "delete": "To delete",
    "move": "To move (rename)",
}


def _plain(text: str, **_: Any) -> str:
    return text


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    return (
        f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
        f"{counts['delete']} to delete, {counts['move']} to move."
    )


def format_value(value: Any) -> str:
    """Format a value as plans print it: JSON text, or `(absent)` for a missing one."""
    if value is None:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def no_changes_text(plan: Plan) -> str:
    """Say there is nothing to do, and when globs left changes out, how many."""
    if not plan.unplanned:
        return NO_CHANGES
    count = plan.unplanned
    left_out = "1 change outside them was" if count == 1 else f"{count} changes outside them were"
    return f"No changes for the given targets; {left_out} not planned."


def included_text(change: ResourceChange) -> str:
    """Say why a targeted plan pulled in a change it was not asked for."""
    verb = "depends" if len(change.included_by) == 1 else "depend"
    return f"included because {', '.join(change.included_by)} {verb} on it"


def render_text(plan: Plan, *, style: Style = _plain, show_steps: bool = False) -> str:
    """Render the whole plan as text. `style` has click.style's signature and adds colour; the default adds none."""
    if plan.is_empty:
        return "\n".join([*(f"Warning: {warning}" for warning in plan.warnings), no_changes_text(plan)]) + "\n"
    lines: list[str] = []
    for action in ("create", "update", "replace", "delete", "move"):
        changes = plan.changes(action)
        if not changes:
            continue
        lines.append(style(f"{_TITLES[action]} ({len(changes)}):", bold=True))
        for change in changes:
            lines.extend(change_lines(change, style))
        lines.append("")
    if plan.identity_change is not None:
        lines.extend(_identity_lines(plan, style))
    for warning in plan.warnings:
        lines.append(style(f"Warning: {warning}", fg="yellow"))
    lines.append(style(summary_line(plan), bold=True))
    if plan.identity_change is not None and plan.identity_change.action == "update":
        lines.append(style(IDENTITY_LINE, bold=True))
    if show_steps:
        from reconciler.plan.apply import describe_steps

        lines.append("")
        lines.append("Apply steps:")
        lines.extend(f"  {n}. {step['name']}: {step['description']}" for n, step in enumerate(describe_steps(plan), 1))
    return "\n".join(lines) + "\n"


def change_lines(change: ResourceChange, style: Style = _plain) -> list[str]:
    """Return the lines of one change: header, reason, fields, downstream and held members."""
    symbol = style(SYMBOLS[change.action], fg=_COLORS[change.action], bold=True)
    title = change.address
    if change.previous_address:
        title = f"{change.previous_address} -> {change.address}"
    where = f"  ({change.source_file})" if change.source_file else ""
    lines = [f"  {symbol} {style(title, bold=True)}{where}", f"      {change.reason}"]
    if change.included_by:
        lines.append(f"      {style(included_text(change), fg='cyan')}")
    if change.action == "create" and change.after is not None:
        for path, value in leaves(change.after.get("spec", {}), ("spec",)):
            lines.append(f"      {style('+', fg='green')} {format_path(path)}: {format_value(value)}")
    for field in change.changed_fields:
        lines += ["      " + line for line in field_lines(field.path, field.before, field.after, field.note, style)]
    if change.downstream:
        lines.append(f"      downstream: {downstream_text(change.downstream)}")
    for pair, members in change.held_members.items():
        lines.append(f"      {pair} holds {members:,} members; the next run sends their exits")
    return lines


def value_lines(value: Any) -> list[str]:
    """Format a value as one line, or a list of mappings as one `- item` line per mapping."""
    if is_mapping_list(value):
        return [f"- {format_value(item)}" for item in value]
    return [format_value(value)]


def is_mapping_list(value: Any) -> bool:
    """Return whether `value` is a list holding mappings, which is too long for one line."""
    return isinstance(value, list) and any(isinstance(item, dict) for item in value)


def field_lines(path: str, before: Any, after: Any, note: str | None, style: Style = _plain) -> list[str]:
    """Return the lines of one changed field. A list of mappings gets one item per line, indented."""
    if not (is_mapping_list(before) or is_mapping_list(after)):
        return [field_line(path, before, after, note, style)]
    suffix = f" {style(note, fg='yellow')}" if note else ""
    lines = [f"{style('~', fg='yellow')} {path}:{suffix}"]
    if before == after:
        return lines + [f"    {line}" for line in value_lines(after)]
    lines.append("    before:")
    lines += [f"      {line}" for line in value_lines(before)]
    lines.append("    after:")
    lines += [f"      {line}" for line in value_lines(after)]
    return lines


def field_line(path: str, before: Any, after: Any, note: str | None, style: Style = _plain) -> str:
    suffix = f" {style(note, fg='yellow')}" if note else ""
    if before == after:
        return f"{style('~', fg='yellow')} {path}: {format_value(after)}{suffix}"
    return f"{style('~', fg='yellow')} {path}: {format_value(before)} -> {format_value(after)}{suffix}"


def downstream_text(downstream: Any) -> str:
    parts = []
    if downstream.audiences:
        parts.append(", ".join(downstream.audiences))
    if downstream.destinations:
        parts.append("feeding " + ", ".join(downstream.destinations))
    return "; ".join(parts)


def _identity_lines(plan: Plan, style: Style) -> list[str]:
    change = plan.identity_change
    assert change is not None
    symbol = style(SYMBOLS[change.action], fg=_COLORS[change.action], bold=True)
    lines = [style("Identity rules:", bold=True), f"  {symbol} {style(IDENTITY_ADDRESS, bold=True)}", f"      {change.reason}"]
    for field in change.changed_fields:
        lines += ["      " + line for line in field_lines(field.path, field.before, field.after, field.note, style)]
    if change.downstream:
        lines.append(f"      downstream: {downstream_text(change.downstream)}")
    lines.append("")
    return lines
