"""Optional C accelerators, each with a pure-Python twin that gives the same results.

:func:`load` returns the compiled module, or ``None`` when it was not built (no compiler at
install time, ``KAPACITY_PURE=1``) or when ``KAPACITY_NO_NATIVE=1`` is set at run time — the
switch the tests use to run both implementations.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["load"]


def load(name: str) -> ModuleType | None:
    """``kapacity._native.<name>`` if it is built and allowed, else ``None``."""
    if os.environ.get("KAPACITY_NO_NATIVE") == "1":
        return None
    try:
        return importlib.import_module(f"kapacity._native.{name}")
    except ImportError:
        return None
