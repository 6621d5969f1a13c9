"""How Python values play the part of Go values inside templates.

Go's reflection distinguishes an *invalid* value (a missing map key, nil data)
from a nil interface; both print as ``<no value>`` when they end a pipeline.
``NO_VALUE`` is the invalid value; ``None`` is Go's ``nil``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from kapacity.gotypes import Duration, Level, Time


class _NoValue:
    """Go's invalid ``reflect.Value``: what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Final = _NoValue()

# Basic kinds used by the comparison functions (Go's text/template funcs.go).
INVALID_KIND: Final = 0
BOOL_KIND: Final = 1
INT_KIND: Final = 2
FLOAT_KIND: Final = 3
STRING_KIND: Final = 4
OTHER_KIND: Final = 5


def basic_kind(v: Any) -> int:
    """The comparison kind of ``v``; Level and Duration are Go integer types."""
    if v is None or v is NO_VALUE:
        return INVALID_KIND
    if isinstance(v, bool):
        return BOOL_KIND
    if isinstance(v, int):
        return INT_KIND
    if isinstance(v, float):
        return FLOAT_KIND
    if isinstance(v, str):
        return STRING_KIND
    if isinstance(v, Duration):
        return INT_KIND
    return OTHER_KIND


def int_value(v: Any) -> int:
    """The integer behind an INT_KIND value."""
    if isinstance(v, Duration):
        return v.ns
    return int(v)


def go_type_name(v: Any) -> str:
    """A Go-looking type name for error messages."""
    if v is None or v is NO_VALUE:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Level):
        return "alert.Level"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Time):
        return "time.Time"
    if isinstance(v, Duration):
        return "time.Duration"
    if isinstance(v, Mapping):
        if v and all(isinstance(x, str) for x in v.values()):
            return "map[string]string"
        return "map[string]interface {}"
    if isinstance(v, list | tuple):
        if v and all(isinstance(x, str) for x in v):
            return "[]string"
        return "[]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def is_true(v: Any) -> bool:
    """Go's template truth: false, 0, nil, empty string/collection are false; structs are true."""
    if v is None or v is NO_VALUE:
        return False
    if isinstance(v, bool | int | float | str | list | tuple | dict | Mapping):
        return bool(v)
    if isinstance(v, Duration):
        return v.ns != 0
    return True


def is_exported(name: str) -> bool:
    """Go only lets templates reach exported (capitalised) fields and methods."""
    return name[:1].isupper()


def struct_fields(v: Any) -> list[Any] | None:
    """The field values of a dataclass, printed by fmt as ``{a b c}``."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return [getattr(v, f.name) for f in dataclasses.fields(v)]
    return None
