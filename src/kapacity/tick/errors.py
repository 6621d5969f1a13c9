"""Errors of the TICKscript subsystem.

::

    KapacityError
     ├── TickError      a script (or lambda) does not lex, parse or type-check;
     │                  carries the 1-based line and column of the offending token
     └── LambdaError    a compiled lambda failed on one point at run time
                        (missing field, mismatched types); callers log it and
                        treat the expression as false
"""

from __future__ import annotations

from kapacity.errors import KapacityError


class TickError(KapacityError):
    """A TICKscript error at ``line``:``col`` (both 1-based).

    ``str(err)`` reads ``line 3 char 5: unexpected ')', expected a value``, the
    position first as in Kapacitor's evaluation errors.
    """

    def __init__(self, message: str, line: int, col: int) -> None:
        self.message = message
        self.line = line
        self.col = col
        super().__init__(f"line {line} char {col}: {message}")


class LambdaError(KapacityError):
    """A lambda could not be evaluated for one point (e.g. a missing field)."""
