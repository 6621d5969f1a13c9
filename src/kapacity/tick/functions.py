"""Built-in lambda functions, with Kapacitor's signatures and error wording.

Each :class:`Builtin` lists its signatures (argument types → result type) so the
compiler can reject a call whose argument types are known to be wrong, and
check them again at run time for values whose types vary per point. Math
functions take floats only, as in Kapacitor: ``abs("int_field")`` is an error,
``abs(float("int_field"))`` is the fix.

Stateful functions (``sigma``, ``count``, ``spread``) get one state object per
call site and per :meth:`CompiledLambda.new_state` (one per group).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kapacity.gotypes import Duration, Time
from kapacity.tick import _bessel
from kapacity.tick._runtime import BOOL, DURATION, FLOAT, INT, REGEX, STRING, TIME, type_name
from kapacity.tick.errors import LambdaError

Signatures = Mapping[tuple[str, ...], str]
PY_TYPES: dict[str, type] = {
    INT: int,
    FLOAT: float,
    STRING: str,
    BOOL: bool,
    DURATION: Duration,
    TIME: Time,
    REGEX: re.Pattern,
}


@dataclass(frozen=True)
class Builtin:
    """A lambda function: its signatures and implementation (or a factory for stateful ones)."""

    name: str
    signatures: Signatures
    impl: Callable[..., Any] | None = None
    factory: Callable[[], Callable[..., Any]] | None = field(default=None)

    def describe_signatures(self) -> str:
        return "[" + ", ".join("(" + ",".join(sig) + ")" for sig in self.signatures) + "]"

    def signature_error(self, arg_types: tuple[str, ...], args: str = "") -> str:
        shown = args or "(" + ",".join(arg_types) + ")"
        return (
            f'Cannot call function "{self.name}" with args {shown}, '
            f"available signatures are {self.describe_signatures()}."
        )

    def allowed_types(self) -> frozenset[tuple[type, ...]]:
        """The signatures as tuples of Python types, for a cheap per-call check."""
        return frozenset(tuple(PY_TYPES[t] for t in sig) for sig in self.signatures)

    def checked(self, impl: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``impl`` with a run-time check of the argument types."""
        allowed = self.allowed_types()

        def call(*args: Any) -> Any:
            if tuple(map(type, args)) not in allowed:
                raise LambdaError(self.signature_error(tuple(type_name(a) for a in args)))
            return impl(*args)

        return call


# --- math -----------------------------------------------------------------------


def _go_math1(f: Callable[[float], float], name: str) -> Callable[[float], float]:
    """Go's math returns NaN / ±Inf where Python raises; mirror Go."""

    def call(x: float) -> float:
        try:
            return f(x)
        except OverflowError:
            return math.inf
        except ValueError:
            if name in ("log", "log10", "log2", "log1p"):
                edge = -1.0 if name == "log1p" else 0.0
                if x == edge:
                    return -math.inf
            if name == "atanh" and abs(x) == 1:
                return math.copysign(math.inf, x)
            if name == "gamma" and x == 0:
                return math.copysign(math.inf, x)
            return math.nan

    return call


def _go_math2(f: Callable[[float, float], float]) -> Callable[[float, float], float]:
    def call(x: float, y: float) -> float:
        try:
            return f(x, y)
        except OverflowError:
            return math.inf
        except (ValueError, ZeroDivisionError):
            if f is math.pow and x == 0 and y < 0:
                return math.inf
            return math.nan

    return call


def _exp2(x: float) -> float:
    return float(2.0**x)


def _logb(x: float) -> float:
    if x == 0:
        return -math.inf
    if math.isinf(x):
        return math.inf
    if math.isnan(x):
        return x
    return float(math.frexp(x)[1] - 1)


def _gamma(x: float) -> float:
    return math.gamma(x)


def _go_max(x: float, y: float) -> float:
    if math.isinf(x) and x > 0 or math.isinf(y) and y > 0:
        return math.inf
    if math.isnan(x) or math.isnan(y):
        return math.nan
    return max(x, y)


def _go_min(x: float, y: float) -> float:
    if math.isinf(x) and x < 0 or math.isinf(y) and y < 0:
        return -math.inf
    if math.isnan(x) or math.isnan(y):
        return math.nan
    return min(x, y)


def _pow10(n: int) -> float:
    if n > 308:
        return math.inf
    if n < -323:
        return 0.0
    return float(10.0**n)


_MATH1: dict[str, Callable[[float], float]] = {
    "abs": math.fabs,
    "acos": math.acos,
    "acosh": math.acosh,
    "asin": math.asin,
    "asinh": math.asinh,
    "atan": math.atan,
    "atanh": math.atanh,
    "cbrt": lambda x: math.copysign(abs(x) ** (1.0 / 3.0), x),
    "ceil": lambda x: float(math.ceil(x)) if math.isfinite(x) else x,
    "cos": math.cos,
    "cosh": math.cosh,
    "erf": math.erf,
    "erfc": math.erfc,
    "exp": math.exp,
    "exp2": _exp2,
    "expm1": math.expm1,
    "floor": lambda x: float(math.floor(x)) if math.isfinite(x) else x,
    "gamma": _gamma,
    "j0": lambda x: _bessel.jn(0, x),
    "j1": lambda x: _bessel.jn(1, x),
    "lgamma": lambda x: math.lgamma(x),
    "log": math.log,
    "log10": math.log10,
    "log1p": math.log1p,
    "log2": math.log2,
    "logb": _logb,
    "sin": math.sin,
    "sinh": math.sinh,
    "sqrt": math.sqrt,
    "tan": math.tan,
    "tanh": math.tanh,
    "trunc": lambda x: float(math.trunc(x)) if math.isfinite(x) else x,
    "y0": lambda x: _bessel.yn(0, x),
    "y1": lambda x: _bessel.yn(1, x),
}
_MATH2: dict[str, Callable[[float, float], float]] = {
    "atan2": math.atan2,
    "hypot": math.hypot,
    "mod": math.fmod,
    "pow": math.pow,
}

# --- strings ----------------------------------------------------------------------


def _byte_index(s: str, sub: str) -> int:
    return s.encode().find(sub.encode())


def _byte_last_index(s: str, sub: str) -> int:
    return s.encode().rfind(sub.encode())


def _index_any(s: str, chars: str) -> int:
    offset = 0
    for ch in s:
        if ch in chars:
            return offset
        offset += len(ch.encode())
    return -1


def _last_index_any(s: str, chars: str) -> int:
    found = -1
    offset = 0
    for ch in s:
        if ch in chars:
            found = offset
        offset += len(ch.encode())
    return found


def _str_replace(s: str, old: str, new: str, n: int) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


def _str_substring(s: str, start: int, stop: int) -> str:
    data = s.encode()
    if start < 0 or stop < 0:
        raise LambdaError(f"found negative index for strSubstring: {min(start, stop)}")
    if stop > len(data):
        raise LambdaError(f"stop index too large for string in strSubstring: {stop}")
    if start > stop:
        raise LambdaError(f"start index {start} is after stop index {stop} in strSubstring")
    return data[start:stop].decode(errors="replace")


_GO_SPACE = "\t\n\v\f\r \x85\xa0"


def _trim_space(s: str) -> str:
    return s.strip(_GO_SPACE + "".join(ch for ch in set(s) if ch.isspace()))


_GO_TEMPLATE = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _regex_replace(pattern: re.Pattern[str], src: str, repl: str) -> str:
    """Go's ``Regexp.ReplaceAllString``: ``$1``, ``${name}`` and ``$$`` in ``repl``."""

    def expand(match: re.Match[str]) -> str:
        def group(m: re.Match[str]) -> str:
            if m.group(1) == "$":
                return "$"
            name = m.group(2) or m.group(3)
            try:
                key: int | str = int(name) if name.isdigit() else name
                value = match.group(key)
            except IndexError:
                return ""
            return value or ""

        return _GO_TEMPLATE.sub(group, repl)

    return pattern.sub(expand, src)


# --- conversions --------------------------------------------------------------------

_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")


def _to_bool(value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return bool(value)
    if kind is str:
        if value in _GO_TRUE:
            return True
        if value in _GO_FALSE:
            return False
        raise LambdaError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
    if value == 0 or value == 1:
        return bool(value == 1)
    raise LambdaError(f"cannot convert {value} to boolean")


def _to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is float:
        if not math.isfinite(value):
            raise LambdaError(f"cannot convert {value} to integer")
        return int(value)
    if kind is bool:
        return 1 if value else 0
    if kind is Duration:
        return int(value.ns)
    if not _GO_INT.match(value):
        raise LambdaError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    result = int(value)
    if not -(2**63) <= result < 2**63:
        raise LambdaError(f'strconv.ParseInt: parsing "{value}": value out of range')
    return result


def _to_float(value: Any) -> float:
    kind = type(value)
    if kind is bool:
        return 1.0 if value else 0.0
    if kind is str:
        if value != value.strip() or "_" in value:
            raise LambdaError(f'strconv.ParseFloat: parsing "{value}": invalid syntax')
        try:
            return float(value)
        except ValueError:
            raise LambdaError(f'strconv.ParseFloat: parsing "{value}": invalid syntax') from None
    return float(value)


def format_go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``."""
    from kapacity.tick.formatter import format_float

    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format_float(value)
    return text[:-2] if text.endswith(".0") else text


def _to_string(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return format_go_float(value)
    from kapacity.tick.formatter import format_duration_literal

    ns = value.ns
    return format_duration_literal(ns) if ns % 1_000 == 0 else f"{ns}ns"


_DURATION_PART = re.compile(r"([0-9]+)(ns|us|µs|u|µ|ms|s|m|h|d|w)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "u": 1_000,
    "µ": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}


def parse_duration_string(text: str) -> int:
    """influxql's duration syntax: ``1h30m``, ``500ms``, ``10s``."""
    pos = 0
    total = 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise LambdaError(f"invalid duration string {text!r}")
        total += int(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if not text:
        raise LambdaError(f"invalid duration string {text!r}")
    return total


def _to_duration(value: Any, unit: Duration | None = None) -> Duration:
    kind = type(value)
    if kind is Duration:
        return Duration(value.ns)
    if kind is str:
        return Duration(parse_duration_string(value))
    if unit is None:
        raise LambdaError("duration expects unit argument for int and float values")
    return Duration(int(value * unit.ns))


# --- time -------------------------------------------------------------------------


_NS_MINUTE = 60_000_000_000
_NS_HOUR = 3_600_000_000_000
_NS_DAY = 86_400_000_000_000
_ORDINAL_1970 = 719_163  # date(1970, 1, 1).toordinal()


def _date(ns: int) -> _dt.date:
    return _dt.date.fromordinal(_ORDINAL_1970 + ns // _NS_DAY)


#: Time functions over integer nanoseconds (UTC); the compiler calls these
#: directly for ``f("time")`` so no Time object is built per point.
TIME_NS_FUNCS: dict[str, Callable[[int], int]] = {
    "unixNano": lambda ns: ns,
    "minute": lambda ns: ns // _NS_MINUTE % 60,
    "hour": lambda ns: ns // _NS_HOUR % 24,
    "weekday": lambda ns: (ns // _NS_DAY + 4) % 7,  # 1970-01-01 was a Thursday; Sunday is 0
    "day": lambda ns: _date(ns).day,
    "month": lambda ns: _date(ns).month,
    "year": lambda ns: _date(ns).year,
}


def _human_bytes(value: Any) -> str:
    """go-humanize ``Bytes``: SI units, one decimal below 10."""
    size = int(value)
    if size < 0:
        size &= 2**64 - 1
    if size < 10:
        return f"{size} B"
    sizes = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    exponent = min(int(math.floor(math.log(size) / math.log(1000))), len(sizes) - 1)
    val = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    return f"{val:.1f} {sizes[exponent]}" if val < 10 else f"{val:.0f} {sizes[exponent]}"


# --- stateful -----------------------------------------------------------------------


class Sigma:
    """Number of standard deviations a value is from the running mean (Welford)."""

    __slots__ = ("mean", "m2", "n")

    def __init__(self) -> None:
        self.mean = 0.0
        self.m2 = 0.0
        self.n = 0.0

    def __call__(self, x: float) -> float:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        if self.n < 2:
            return 0.0
        variance = self.m2 / (self.n - 1)
        if variance == 0:
            return 0.0
        return abs(x - self.mean) / math.sqrt(variance)


class Count:
    """How many times the expression was evaluated."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


class Spread:
    """Running max - min of the values seen."""

    __slots__ = ("low", "high")

    def __init__(self) -> None:
        self.low = math.inf
        self.high = -math.inf

    def __call__(self, x: float) -> float:
        if x < self.low:
            self.low = x
        if x > self.high:
            self.high = x
        return self.high - self.low


# --- the table ----------------------------------------------------------------------

_ALL_TYPES = (FLOAT, INT, STRING, BOOL, REGEX, TIME, DURATION)


def _table() -> dict[str, Builtin]:
    table: dict[str, Builtin] = {}

    def add(name: str, sigs: Signatures, impl: Callable[..., Any] | None = None, **kw: Any) -> None:
        table[name] = Builtin(name, dict(sigs), impl, **kw)

    for name, f1 in _MATH1.items():
        add(name, {(FLOAT,): FLOAT}, _go_math1(f1, name))
    for name, f2 in _MATH2.items():
        add(name, {(FLOAT, FLOAT): FLOAT}, _go_math2(f2))
    add("max", {(FLOAT, FLOAT): FLOAT}, _go_max)
    add("min", {(FLOAT, FLOAT): FLOAT}, _go_min)
    add("pow10", {(INT,): FLOAT}, _pow10)
    for name, order in (("jn", _bessel.jn), ("yn", _bessel.yn)):
        add(name, {(INT, FLOAT): FLOAT}, order)
    table["jN"] = Builtin("jN", table["jn"].signatures, table["jn"].impl)
    table["yN"] = Builtin("yN", table["yn"].signatures, table["yn"].impl)

    s2b: dict[str, Callable[[str, str], bool]] = {
        "strContains": lambda s, sub: sub in s,
        "strContainsAny": lambda s, chars: any(ch in s for ch in chars),
        "strHasPrefix": lambda s, p: s.startswith(p),
        "strHasSuffix": lambda s, p: s.endswith(p),
    }
    for name, fb in s2b.items():
        add(name, {(STRING, STRING): BOOL}, fb)
    s2i: dict[str, Callable[[str, str], int]] = {
        "strCount": lambda s, sub: s.count(sub),
        "strIndex": _byte_index,
        "strIndexAny": _index_any,
        "strLastIndex": _byte_last_index,
        "strLastIndexAny": _last_index_any,
    }
    for name, fi in s2i.items():
        add(name, {(STRING, STRING): INT}, fi)
    s2s: dict[str, Callable[[str, str], str]] = {
        "strTrim": lambda s, cut: s.strip(cut),
        "strTrimLeft": lambda s, cut: s.lstrip(cut),
        "strTrimRight": lambda s, cut: s.rstrip(cut),
        "strTrimPrefix": lambda s, p: s.removeprefix(p),
        "strTrimSuffix": lambda s, p: s.removesuffix(p),
    }
    for name, fs in s2s.items():
        add(name, {(STRING, STRING): STRING}, fs)
    add("strToLower", {(STRING,): STRING}, str.lower)
    add("strToUpper", {(STRING,): STRING}, str.upper)
    add("strTrimSpace", {(STRING,): STRING}, _trim_space)
    add("strLength", {(STRING,): INT}, lambda s: len(s.encode()))
    add("strReplace", {(STRING, STRING, STRING, INT): STRING}, _str_replace)
    add("strSubstring", {(STRING, INT, INT): STRING}, _str_substring)
    add("regexReplace", {(REGEX, STRING, STRING): STRING}, _regex_replace)

    add("bool", {(t,): BOOL for t in (BOOL, STRING, INT, FLOAT)}, _to_bool)
    add("int", {(t,): INT for t in (BOOL, STRING, INT, FLOAT, DURATION)}, _to_int)
    add("float", {(t,): FLOAT for t in (BOOL, STRING, INT, FLOAT)}, _to_float)
    add("string", {(t,): STRING for t in (BOOL, STRING, INT, FLOAT, DURATION)}, _to_string)
    add(
        "duration",
        {
            (DURATION,): DURATION,
            (STRING,): DURATION,
            (INT, DURATION): DURATION,
            (FLOAT, DURATION): DURATION,
            (STRING, DURATION): DURATION,
        },
        _to_duration,
    )

    for name, ns_func in TIME_NS_FUNCS.items():
        add(name, {(TIME,): INT}, lambda t, f=ns_func: f(t.ns))
    add("humanBytes", {(FLOAT,): STRING, (INT,): STRING}, _human_bytes)

    add("if", {(BOOL, t, t): t for t in _ALL_TYPES}, lambda c, a, b: a if c else b)
    # Compiled specially (see compiler): isPresent looks at the point, now at the clock.
    add("isPresent", {(t,): BOOL for t in _ALL_TYPES})
    add("now", {(): TIME})

    add("sigma", {(FLOAT,): FLOAT}, factory=Sigma)
    add("count", {(): INT}, factory=Count)
    add("spread", {(FLOAT,): FLOAT}, factory=Spread)
    return table


BUILTINS: dict[str, Builtin] = _table()


def static_result(builtin: Builtin, arg_types: tuple[str | None, ...]) -> tuple[bool, str | None]:
    """(fits, result type) for a call whose argument types are partly known (None = unknown).

    ``fits`` is False when no signature can match; the result type is None when
    it depends on types only known at run time.
    """
    candidates = [
        result
        for sig, result in builtin.signatures.items()
        if len(sig) == len(arg_types)
        and all(known is None or known == want for known, want in zip(arg_types, sig))
    ]
    if not candidates:
        return False, None
    if builtin.name == "if" and len(arg_types) == 3:
        if arg_types[1] is not None and arg_types[2] is not None and arg_types[1] != arg_types[2]:
            return False, None
    results = set(candidates)
    return True, results.pop() if len(results) == 1 else None
