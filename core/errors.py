"""Errors raised by services. Each carries a message a person can act on; surfaces show it as is.

    DeskbridgeError            base: `message` (what went wrong) and `hint` (what to do about it)
    ├── NotFound               unknown ticket, customer, member, connection (also: outside your scope)
    ├── InvalidInput           bad values: oversized text, unknown status for the board, bad filters
    │   └── InvalidFilter      a queue filter that cannot be understood; `suggestions` lists close matches
    ├── PermissionDenied       the actor may not do this (e.g. a customer contact running tech commands)
    ├── Conflict               the state does not allow it now (duplicate name, ticket closed, …)
    └── ConnectionProblem      a PSA connection refused credentials or is unusable
"""

from __future__ import annotations


class DeskbridgeError(Exception):
    def __init__(self, message: str, *, hint: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class NotFound(DeskbridgeError):
    pass


class InvalidInput(DeskbridgeError):
    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message, hint=hint, reason=reason)
        self.field = field


class InvalidFilter(InvalidInput):
    def __init__(self, message: str, *, hint: str | None = None, suggestions: list[str] | None = None) -> None:
        super().__init__(message, hint=hint, field="filter")
        self.suggestions = suggestions or []


class PermissionDenied(DeskbridgeError):
    pass


class Conflict(DeskbridgeError):
    pass


class ConnectionProblem(DeskbridgeError):
    pass
