"""The one exception tree of personas.

Every error is named by what the caller should do next::

    PersonasError                 root; carries a message and an optional hint
    ├── SpecError                 fix the specs or personas.yaml (carries diagnostics)
    ├── UsageError                fix the command line
    ├── ConflictError             another process or a newer state got there first
    │   ├── LockError             a lock is held: wait, retry, or force-unlock
    │   └── StalePlanError        a saved plan no longer matches the state
    ├── StateError                the state store cannot be used as it is
    │   └── StateSchemaError      run `personas state upgrade` (or upgrade personas)
    ├── WarehouseError            the warehouse failed or holds unexpected data
    │   └── WarehouseBusyError    the embedded warehouse file is held by another process
    ├── TransientError            retry later; `retry_after` says when, in seconds
    └── PermanentError            stop: retrying will not help until a person acts

The CLI maps each error to one red line on stderr (plus the hint) and to
`exit_code`; `--debug` adds the traceback. Code below the CLI never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PersonasError(Exception):
    """Root of every error personas raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(PersonasError):
    """The specs or personas.yaml are invalid; `diagnostics` lists every problem found."""

    def __init__(
        self,
        message: str,
        *,
        diagnostics: Sequence[Any] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.diagnostics = list(diagnostics)


class UsageError(PersonasError):
    """The command line is invalid."""


class ConflictError(PersonasError):
    """Another process, or a newer state, got there first."""


class LockError(ConflictError):
    """A lock is held by someone else; `holder` describes them when known."""

    def __init__(self, message: str, *, holder: dict[str, Any] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.holder = holder or {}


class StalePlanError(ConflictError):
    """A saved plan was made against a state or specs that have since moved."""


class StateError(PersonasError):
    """The state store is unreachable or inconsistent."""


class StateSchemaError(StateError):
    """The state store's schema version is not the one this personas uses."""


class WarehouseError(PersonasError):
    """The warehouse failed, or holds data personas cannot use."""


class WarehouseBusyError(WarehouseError):
    """The embedded warehouse file is held by another process."""


class TransientError(PersonasError):
    """A failure that may pass: retry after `retry_after` seconds (None: use backoff)."""

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class PermanentError(PersonasError):
    """A failure that retrying will not fix until a person acts."""


class RemovalsHeldError(PersonasError):
    """A run finished, but some removals were held back or some resources failed."""

    exit_code = 3
