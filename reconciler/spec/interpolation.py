"""`${NAME}` and `${NAME:-default}` references to environment variables in string fields.

Specs keep the references as written; values are substituted only when a
command needs them (apply, run), so validation works without secrets, as in
pull requests from forks. `$${` writes a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.errors import SpecError

_TOKEN_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}?")
_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    """One `${NAME}` or `${NAME:-default}` in a string."""

    name: str
    default: str | None
    start: int
    end: int


def find_references(text: str) -> list[Reference]:
    """Return the references in `text`, raising ValueError on a malformed one."""
    references = []
    for match in _TOKEN_RE.finditer(text):
        if match.group(0) == "$${":
            continue
        if not match.group(0).endswith("}"):
            raise ValueError(f"unclosed reference {match.group(0)!r}: write ${{NAME}} or ${{NAME:-default}}")
        inner = _NAME_RE.match(match.group(1))
        if not inner:
            raise ValueError(
                f"invalid reference {match.group(0)!r}: names use letters, digits and underscores, "
                "as in ${NAME} or ${NAME:-default}"
            )
        references.append(Reference(inner.group(1), inner.group(2), match.start(), match.end()))
    return references


def has_references(text: str) -> bool:
    try:
        return bool(find_references(text))
    except ValueError:
        return False


def is_single_reference(text: str) -> bool:
    """True when the whole string is one reference, such as `${CRM_SIGNING_SECRET}`."""
    try:
        references = find_references(text)
    except ValueError:
        return False
    return len(references) == 1 and references[0].start == 0 and references[0].end == len(text)


def unset_variables(text: str, env: Mapping[str, str]) -> list[str]:
    """Names referenced without a default that `env` does not set."""
    try:
        return [ref.name for ref in find_references(text) if ref.default is None and ref.name not in env]
    except ValueError:
        return []


def interpolate(text: str, env: Mapping[str, str], *, where: str = "") -> str:
    """Substitute every reference from `env`; raise SpecError on an unset one without a default."""
    try:
        references = find_references(text)
    except ValueError as error:
        raise SpecError(f"{where}: {error}" if where else str(error)) from None
    parts: list[str] = []
    position = 0
    escapes = [match.start() for match in _TOKEN_RE.finditer(text) if match.group(0) == "$${"]
    tokens = sorted([(ref.start, ref) for ref in references] + [(start, None) for start in escapes], key=lambda t: t[0])
    for start, ref in tokens:
        parts.append(text[position:start])
        if ref is None:
            parts.append("${")
            position = start + 3
            continue
        if ref.name in env:
            parts.append(env[ref.name])
        elif ref.default is not None:
            parts.append(ref.default)
        else:
            location = f" (in {where})" if where else ""
            raise SpecError(
                f"environment variable {ref.name} is not set{location}",
                hint=f"Set {ref.name}, or write ${{{ref.name}:-default}} to give it a default.",
            )
        position = ref.end
    parts.append(text[position:])
    return "".join(parts)
