"""Errors of alert handlers: bad options when a handler is defined, failures when it runs.

::

    HandlerError           (a KapacityError)
     └── HandlerOptionError  an option is unknown, missing or invalid; the message names
                             the option, the offending value and the valid choices
"""

from __future__ import annotations

from kapacity.errors import KapacityError


class HandlerError(KapacityError):
    """An alert handler could not be created or could not deliver."""


class HandlerOptionError(HandlerError, ValueError):
    """An invalid handler option; ``option`` is its canonical name."""

    def __init__(self, kind: str, option: str, message: str) -> None:
        super().__init__(f"{kind} handler: option {option!r}: {message}" if option else f"{kind} handler: {message}")
        self.kind = kind
        self.option = option
