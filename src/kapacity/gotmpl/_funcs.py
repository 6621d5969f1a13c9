"""The builtin template functions (``text/template/funcs.go``).

Functions raise :class:`FuncError` (or any exception) for Go's returned
``error``; the executor reports it as ``error calling <name>: <message>``.
Arguments arrive as Python values, with ``NO_VALUE`` for Go's invalid value
where Go passes a raw ``reflect.Value``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kapacity.alert.gojson import encode as json_encode
from kapacity.gotmpl._escape import html_escape, js_escape, url_query_escape
from kapacity.gotmpl._values import (
    BOOL_KIND,
    FLOAT_KIND,
    INT_KIND,
    INVALID_KIND,
    NO_VALUE,
    OTHER_KIND,
    STRING_KIND,
    basic_kind,
    go_type_name,
    int_value,
    is_true,
)
from kapacity.gotmpl.gofmt import format_value, sprint, sprintf, sprintln


class FuncError(Exception):
    """The ``error`` a template function returns."""


@dataclass(frozen=True, slots=True)
class Builtin:
    fn: Callable[..., Any]
    fixed: int  # number of fixed parameters
    variadic: bool
    raw: bool  # parameters are reflect.Value: NO_VALUE passes through, nil literals are refused


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*("<no value>" if a is None or a is NO_VALUE else a for a in args))


def _html(*args: Any) -> str:
    return html_escape(_eval_args(args))


def _js(*args: Any) -> str:
    return js_escape(_eval_args(args))


def _urlquery(*args: Any) -> str:
    return url_query_escape(_eval_args(args))


def _print(*args: Any) -> str:
    return sprint(*args)


def _println(*args: Any) -> str:
    return sprintln(*args)


def _printf(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise FuncError(f"wrong type for value; expected string; got {go_type_name(fmt)}")
    return sprintf(fmt, *args)


def _not(arg: Any) -> bool:
    return not is_true(arg)


def length(item: Any) -> int:
    if item is None or item is NO_VALUE:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8"))
    if isinstance(item, Mapping | list | tuple | bytes | bytearray):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    k = basic_kind(index)
    if k == INVALID_KIND:
        raise FuncError("cannot index slice/array with nil")
    if k != INT_KIND or isinstance(index, bool):
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    x = int_value(index)
    if x < 0 or x > cap:
        raise FuncError(f"index out of range: {x}")
    return x


def _map_zero(m: Mapping[Any, Any]) -> Any:
    """The zero value of a map's element type: "" for string maps (tags), else nil."""
    if all(isinstance(v, str) for v in m.values()):
        return ""
    return NO_VALUE


_ABSENT = object()


def index(item: Any, *indexes: Any) -> Any:
    if len(indexes) == 1:
        # Fast paths for the common alert-template shapes: list[int] and tags[str].
        idx = indexes[0]
        t = type(item)
        if t is list and type(idx) is int and 0 <= idx < len(item):
            return item[idx]
        if t is dict and type(idx) is str:
            v = item.get(idx, _ABSENT)
            if v is not _ABSENT:
                return v
    if item is None or item is NO_VALUE:
        raise FuncError("index of untyped nil")
    for idx in indexes:
        if item is None or item is NO_VALUE:
            raise FuncError("index of nil pointer")
        if isinstance(item, str):
            data = item.encode("utf-8")
            x = _index_arg(idx, len(data))
            if x >= len(data):
                raise FuncError(f"index out of range: {x}")
            item = data[x]
        elif isinstance(item, list | tuple | bytes | bytearray):
            x = _index_arg(idx, len(item))
            if x >= len(item):
                raise FuncError(f"index out of range: {x}")
            item = item[x]
        elif isinstance(item, Mapping):
            if idx is None or idx is NO_VALUE:
                raise FuncError("value is nil; should be of type string")
            if item and not isinstance(idx, str) and all(isinstance(k, str) for k in item):
                raise FuncError(f"value has type {go_type_name(idx)}; should be string")
            try:
                item = item[idx]
            except (KeyError, TypeError):
                item = _map_zero(item)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) > 2:
            raise FuncError("cannot 3-index slice a string")
        seq: Sequence[Any] = item.encode("utf-8")
    elif isinstance(item, list | tuple | bytes | bytearray):
        seq = item
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    cap = len(seq)
    idx = [0, len(seq)]
    for i, index_value in enumerate(indexes):
        x = _index_arg(index_value, cap)
        if i < 2:
            idx[i] = x
        elif x < idx[1]:
            raise FuncError(f"invalid slice index: {idx[1]} > {x}")
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    part = seq[idx[0] : idx[1]]
    if isinstance(item, str):
        assert isinstance(part, bytes)
        return part.decode("utf-8", "replace")
    return part


def call(fn: Any, *args: Any) -> Any:
    if fn is None or fn is NO_VALUE:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type_name(fn)}")
    return fn(*(None if a is NO_VALUE else a for a in args))


def eq(arg1: Any, *arg2: Any) -> bool:
    if not arg2:
        raise FuncError("missing argument for comparison")
    k1 = basic_kind(arg1)
    for arg in arg2:
        k2 = basic_kind(arg)
        if k1 != k2:
            if k1 != INVALID_KIND and k2 != INVALID_KIND:
                raise FuncError(
                    f"incompatible types for comparison: {go_type_name(arg1)} and {go_type_name(arg)}"
                )
            truth = False
        elif k1 == INT_KIND:
            truth = int_value(arg1) == int_value(arg)
        elif k1 in (BOOL_KIND, FLOAT_KIND, STRING_KIND):
            truth = arg1 == arg
        elif k1 == INVALID_KIND:
            truth = True
        else:
            if isinstance(arg1, list | dict) or isinstance(arg, list | dict):
                bad = arg if isinstance(arg, list | dict) else arg1
                raise FuncError(f"non-comparable type {format_value(bad)}: {go_type_name(bad)}")
            truth = type(arg1) is type(arg) and bool(arg1 == arg)
        if truth:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    k1 = basic_kind(arg1)
    if k1 in (INVALID_KIND, OTHER_KIND):
        raise FuncError("invalid type for comparison")
    k2 = basic_kind(arg2)
    if k2 in (INVALID_KIND, OTHER_KIND):
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == BOOL_KIND:
        raise FuncError("invalid type for comparison")
    if k1 == INT_KIND:
        return int_value(arg1) < int_value(arg2)
    return bool(arg1 < arg2)


def le(arg1: Any, arg2: Any) -> bool:
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    return not lt(arg1, arg2)


def json_func(v: Any) -> str:
    """Kapacitor's ``json`` template function: ``json.NewEncoder(w).Encode(v)`` (note the newline)."""
    return json_encode(None if v is NO_VALUE else v) + "\n"


def _and_or_placeholder(*args: Any) -> Any:  # pragma: no cover - executed inline (short-circuit)
    raise AssertionError("and/or are evaluated by the executor")


BUILTINS: dict[str, Builtin] = {
    "and": Builtin(_and_or_placeholder, 1, True, True),
    "or": Builtin(_and_or_placeholder, 1, True, True),
    "not": Builtin(_not, 1, False, True),
    "call": Builtin(call, 1, True, True),
    "html": Builtin(_html, 0, True, False),
    "index": Builtin(index, 1, True, True),
    "slice": Builtin(slice_, 1, True, True),
    "js": Builtin(_js, 0, True, False),
    "len": Builtin(length, 1, False, True),
    "print": Builtin(_print, 0, True, False),
    "printf": Builtin(_printf, 1, True, False),
    "println": Builtin(_println, 0, True, False),
    "urlquery": Builtin(_urlquery, 0, True, False),
    "eq": Builtin(eq, 1, True, True),
    "ne": Builtin(ne, 2, False, True),
    "lt": Builtin(lt, 2, False, True),
    "le": Builtin(le, 2, False, True),
    "gt": Builtin(gt, 2, False, True),
    "ge": Builtin(ge, 2, False, True),
}
