"""A plan as a pull-request comment: summary first, a banner for deletes and replaces, details folded.

GitHub refuses comments over 65,536 characters. The summary, the banner
and the identity line always fit; change details are added in order until
the budget is spent, and a closing line gives the number left out.
"""

from __future__ import annotations

from reconciler.plan.model import Plan, ResourceChange
from reconciler.plan.render_text import IDENTITY_LINE, NO_CHANGES, change_lines, field_line, summary_line

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
        lines.append(NO_CHANGES)
        return "\n".join(lines) + "\n"
    destructive = plan.changes("delete") + plan.changes("replace")
    if destructive:
        lines.append("> [!WARNING]")
        lines.append(
            f"> This plan deletes {len(plan.changes('delete'))} and replaces {len(plan.changes('replace'))} "
            "resource(s). Deleted audiences send their members' exits on the next run; replaced ones close their "
            "membership history and resync their destinations."
        )
        shown = ", ".join(f"`{change.address}`" for change in destructive[:20])
        more = f" and {len(destructive) - 20} more" if len(destructive) > 20 else ""
        lines.append(f"> Affected: {shown}{more}.")
        lines.append("")
    lines.append(f"**{summary_line(plan)}**")
    if plan.identity_change is not None and plan.identity_change.action == "update":
        lines.extend(["", f"**{IDENTITY_LINE}**", "", "```diff"])
        lines.extend(field_line(f.path, f.before, f.after, f.note) for f in plan.identity_change.changed_fields)
        lines.append("```")
    for warning in plan.warnings:
        lines.extend(["", f"_{warning}_"])
    lines.append("")
    return "\n".join(lines) + "\n"


def _change_block(change: ResourceChange) -> str:
    # The diff fence colours lines by their first character: +, - or space.
    marks = {"create": "+", "delete": "-", "replace": "!", "update": "!", "move": "!"}
    lines = change_lines(change)
    header = lines[0].strip()
    symbol, _, rest = header.partition(" ")
    text = [f"{marks[change.action]} {symbol} {rest}"]
    text.extend("  " + line.strip() for line in lines[1:])
    return "\n".join(text).replace("```", "'''") + "\n"
