"""Errors of the embedded store.

::

    KapacityError
     └── StoreError     the data file cannot be used (corrupt, foreign, newer schema,
                        unreadable); carries the path. Never retriable: kapacity
                        refuses to start rather than recreate a store it cannot read.
"""

from __future__ import annotations

from kapacity.errors import KapacityError


class StoreError(KapacityError):
    """The store at ``path`` cannot be opened or used."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"store {path}: {message}")
