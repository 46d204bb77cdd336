"""A plan as canonical JSON: what `plan --out` saves and `--format json` prints."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from reconciler.plan.model import Plan


def render_json(plan: Plan) -> str:
    """Indented JSON with sorted keys, ending in a newline; equal plans give equal text."""
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_plan(plan: Plan, path: Path) -> None:
    """Write the plan's canonical JSON atomically: readers see the old file or the whole new one."""
    from reconciler.errors import UsageError

    path = Path(path)
    text = render_json(plan)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise UsageError(
            f"cannot write the plan to {path}: {error.strerror}",
            hint="Pass --out a path in an existing folder you can write to.",
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_plan(path: Path) -> Plan:
    """Read a saved plan; a file that is not a plan of this format is a UsageError saying so."""
    from reconciler.errors import UsageError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"plan file {path} does not exist", hint="Write one with `personas plan --out FILE`.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read plan file {path}: {error}", hint="Pass a file written by `personas plan --out FILE`.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path} is not a personas plan: it is not JSON (line {error.lineno}: {error.msg})",
            hint="Pass a file written by `personas plan --out FILE`.",
        ) from None
    return Plan.from_dict(data, source=str(path))
