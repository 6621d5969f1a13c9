"""Run-time value rules of lambda expressions (Kapacitor's ``tick/stateful`` semantics).

Values are plain Python objects: ``int`` (int64), ``float`` (float64), ``str``,
``bool``, :class:`~kapacity.gotypes.Duration`, :class:`~kapacity.gotypes.Time`
and compiled ``re.Pattern``. ``bool`` is never a number here (Python's
``True + 1`` is an error in TICKscript), so type tests use ``type(x) is int``.

The compiler inlines the common, statically typed cases; these helpers handle
values whose type is only known per point, and raise :class:`LambdaError`
with Kapacitor's wording when an operation does not apply.
"""

from __future__ import annotations

import math
import re
from typing import Any

from kapacity.gotypes import Duration, Time
from kapacity.tick.errors import LambdaError

INT = "int"
FLOAT = "float"
STRING = "string"
BOOL = "boolean"
DURATION = "duration"
TIME = "time"
REGEX = "regex"

NUMERIC = frozenset({int, float})
_TYPE_NAMES: dict[type, str] = {
    int: INT,
    float: FLOAT,
    str: STRING,
    bool: BOOL,
    Duration: DURATION,
    Time: TIME,
    re.Pattern: REGEX,
}

COMPARISON = frozenset({"==", "!=", "<", "<=", ">", ">="})
ORDERING = frozenset({"<", "<=", ">", ">="})
MATH = frozenset({"+", "-", "*", "/", "%"})
LOGICAL = frozenset({"AND", "OR"})
REGEX_OPS = frozenset({"=~", "!~"})


def type_name(value: object) -> str:
    """Kapacitor's name for a value's type (``int``, ``float``, ``string``, ``boolean``, ...)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


# --- static rules -------------------------------------------------------------


def _comparison_result(left: str, right: str, op: str) -> str | None:
    numbers = (INT, FLOAT)
    if left in numbers and right in numbers:
        return BOOL
    if left != right:
        return None
    if left in (STRING, DURATION, TIME):
        return BOOL
    if left == BOOL and op in ("==", "!="):
        return BOOL
    return None


_MATH_RESULT: dict[tuple[str, str, str], str] = {}
for _op in ("+", "-", "*", "/"):
    _MATH_RESULT[(_op, INT, INT)] = INT
    _MATH_RESULT[(_op, FLOAT, FLOAT)] = FLOAT
_MATH_RESULT[("%", INT, INT)] = INT
_MATH_RESULT[("+", STRING, STRING)] = STRING
_MATH_RESULT[("+", DURATION, DURATION)] = DURATION
_MATH_RESULT[("-", DURATION, DURATION)] = DURATION
_MATH_RESULT[("*", DURATION, INT)] = DURATION
_MATH_RESULT[("*", INT, DURATION)] = DURATION
_MATH_RESULT[("*", DURATION, FLOAT)] = DURATION
_MATH_RESULT[("*", FLOAT, DURATION)] = DURATION
_MATH_RESULT[("/", DURATION, INT)] = DURATION
_MATH_RESULT[("/", DURATION, FLOAT)] = DURATION
_MATH_RESULT[("/", DURATION, DURATION)] = INT
_MATH_RESULT[("+", TIME, DURATION)] = TIME
_MATH_RESULT[("-", TIME, DURATION)] = TIME
_MATH_RESULT[("-", TIME, TIME)] = DURATION


def binary_result(op: str, left: str, right: str) -> str | None:
    """The result type of ``left op right``, or None if TICKscript rejects it."""
    if op in COMPARISON:
        return _comparison_result(left, right, op)
    if op in LOGICAL:
        return BOOL if left == BOOL and right == BOOL else None
    if op in REGEX_OPS:
        return BOOL if left == STRING and right == REGEX else None
    return _MATH_RESULT.get((op, left, right))


def binary_error(op: str, left: str, right: str) -> str:
    """Kapacitor's message for an operator applied to the wrong types."""
    kind = "math" if op in MATH else "logical" if op in LOGICAL else "comparison"
    valid_left = any(key[0] == op and key[1] == left for key in _MATH_RESULT) or (
        op in COMPARISON and left in (INT, FLOAT, STRING, DURATION, TIME, BOOL)
    )
    if op in MATH and not valid_left:
        return f"invalid {kind} operator {op} for type {left}"
    if op in ORDERING and left == BOOL:
        return f"invalid {kind} operator {op} for type {left}"
    return (
        f"mismatched type to binary operator. got {left} {op} {right}. "
        "see bool(), int(), float(), string(), duration()"
    )


# --- dynamic helpers ------------------------------------------------------------


def missing(name: str) -> LambdaError:
    return LambdaError(f'no field or tag exists for "{name}"')


def tag_or_missing(tags: Any, name: str) -> Any:
    """Second half of a reference lookup: the tag, or the missing-value error."""
    try:
        return tags[name]
    except (KeyError, TypeError):
        raise missing(name) from None


def mismatch(op: str, left: object, right: object) -> Any:
    raise LambdaError(binary_error(op, type_name(left), type_name(right)))


def go_div(a: int, b: int) -> int:
    """Go's truncating integer division."""
    if b == 0:
        raise LambdaError("integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def go_mod(a: int, b: int) -> int:
    """Go's ``%``: the sign follows the dividend."""
    if b == 0:
        raise LambdaError("integer divide by zero")
    return a - b * go_div(a, b)


def float_div(a: float, b: float) -> float:
    """IEEE division as Go does it: x/0 is ±Inf (NaN for 0/0), never an exception."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _math(op: str, a: Any, b: Any, result: str) -> Any:
    if result == DURATION or result == TIME or (op == "/" and type(a) is Duration):
        return _duration_math(op, a, b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return go_div(a, b) if result == INT else float_div(a, b)
    return go_mod(a, b)


def _duration_math(op: str, a: Any, b: Any) -> Any:
    if type(a) is Time:
        if type(b) is Time:
            return Duration(a.ns - b.ns)
        return Time(a.ns + b.ns if op == "+" else a.ns - b.ns)
    if op == "+":
        return Duration(a.ns + b.ns)
    if op == "-":
        return Duration(a.ns - b.ns)
    if op == "*":
        if type(a) is Duration:
            return Duration(int(a.ns * b))
        return Duration(int(a * b.ns))
    # "/"
    if type(b) is Duration:
        return go_div(a.ns, b.ns)
    if type(b) is int:
        return Duration(go_div(a.ns, b))
    if b == 0:
        raise LambdaError("duration divide by zero")
    return Duration(int(a.ns / b))


def math_op(op: str, a: Any, b: Any) -> Any:
    """``a op b`` for + - * / % with TICKscript's type rules (no implicit int/float mix)."""
    result = binary_result(op, type_name(a), type_name(b))
    if result is None:
        mismatch(op, a, b)
    return _math(op, a, b, result)  # type: ignore[arg-type]  # mismatch() never returns


def static_math(op: str, left: str, right: str, result: str) -> str:
    """Python source template for a math op whose operand types are known ({0}, {1} = operands)."""
    if left == INT and right == INT:
        if op == "/":
            return "_go_div({0}, {1})"
        if op == "%":
            return "_go_mod({0}, {1})"
        return "({0} " + op + " {1})"
    if left == FLOAT and right == FLOAT:
        if op == "/":
            return "_float_div({0}, {1})"
        return "({0} " + op + " {1})"
    if left == STRING and right == STRING:
        return "({0} + {1})"
    return "_math_op(" + repr(op) + ", {0}, {1})"


def compare(op: str, a: Any, b: Any) -> bool:
    """``a op b`` for comparison operators with TICKscript's type rules."""
    if binary_result(op, type_name(a), type_name(b)) is None:
        mismatch(op, a, b)
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def regex_match(op: str, a: Any, pattern: Any) -> bool:
    if type(a) is not str or not isinstance(pattern, re.Pattern):
        mismatch(op, a, pattern)
    found = pattern.search(a) is not None
    return found if op == "=~" else not found


def as_bool(value: Any, what: str) -> bool:
    """A boolean operand (of AND / OR / ! or a predicate); anything else is an error."""
    if type(value) is bool:
        return value
    raise LambdaError(f"{what} expects a boolean, got {type_name(value)} {value!r}")


def negate(value: Any) -> Any:
    kind = type(value)
    if kind is int or kind is float:
        return -value
    if kind is Duration:
        return Duration(-value.ns)
    raise LambdaError(f"invalid argument to '-': {type_name(value)} {value!r}")


def unary_result(op: str, operand: str) -> str | None:
    if op == "!":
        return BOOL if operand == BOOL else None
    return operand if operand in (INT, FLOAT, DURATION) else None
