"""Errors raised while parsing or executing a Go template."""

from __future__ import annotations

from kapacity.errors import KapacityError


class TemplateError(KapacityError):
    """A template failed to parse or to execute.

    The message follows Go's ``text/template`` wording and always names the
    template and a ``line:col`` position, e.g.
    ``template: message:1:3: executing "message" at <.Foo>: can't evaluate field Foo in type string``.
    Columns are 0-based offsets within the line, as in Go's ``ErrorContext``.
    """

    def __init__(self, message: str, *, name: str = "", line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.name = name
        self.line = line
        self.col = col
