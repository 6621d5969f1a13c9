"""JSON encoding that matches Go's ``encoding/json`` byte for byte.

Kapacitor's consumers parse (and sometimes compare) the JSON it writes, so the
details matter: floats in shortest form without a trailing ``.0``, ``<>&`` and
U+2028/U+2029 escaped, map keys sorted, times as RFC3339Nano.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kapacity.gotypes import Duration, Level, Time

_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


# The C-accelerated string encoder behind ``json.dumps(ensure_ascii=False)``: building a
# JSONEncoder per call costs ~10x more than the escaping itself on this hot path.
_encode_basestring: Callable[[str], str] = json.encoder.encode_basestring


def go_string(s: str) -> str:
    """A JSON string literal as Go's encoder writes it (HTML-safe, UTF-8 kept raw)."""
    out = _encode_basestring(s)
    if "<" in s or ">" in s or "&" in s or "\u2028" in s or "\u2029" in s:
        return out.translate(_HTML_ESCAPES)
    return out


def _fixed(digits: str, point: int) -> str:
    """Place the decimal point ``point`` digits from the left of ``digits``."""
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def go_float(f: float) -> str:
    """Go's JSON encoding of a float64: ``strconv`` shortest, ``'e'`` form only outside [1e-6, 1e21)."""
    text = repr(f)
    if "e" not in text and "n" not in text:
        # Python prints [1e-4, 1e16) in fixed notation, a subset of Go's fixed range:
        # only the trailing ".0" of whole numbers differs.
        return text[:-2] if text.endswith(".0") else text
    if math.isnan(f) or math.isinf(f):
        # Go refuses to encode these; null keeps the document valid.
        return "null"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    mantissa, _, exp_text = repr(abs(f)).partition("e")
    exp = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # Decimal exponent of the first significant digit.
    lead_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    point = len(whole) + exp - lead_zeros
    digits = digits.rstrip("0") or "0"
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        e = point - 1
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        # Go pads the exponent to two digits, then its JSON encoder trims "e-07" to "e-7".
        exp_part = f"e-{-e}" if e < 0 else f"e+{e:02d}"
        return f"{sign}{body}{exp_part}"
    return sign + _fixed(digits, point)


def _encode_time(value: Time) -> str:
    return '"' + value.rfc3339nano() + '"'


#: Exact-type fast paths; subclasses and containers fall through to :func:`_encode_slow`.
_FAST: dict[type, Callable[[Any], str]] = {
    str: go_string,
    float: go_float,
    int: str,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
    Time: _encode_time,
    Duration: lambda v: str(v.ns),
    Level: lambda v: '"' + v.name + '"',
}


def _encode_list(value: list[Any] | tuple[Any, ...]) -> str:
    return "[" + ",".join([encode(v) for v in value]) + "]"


def _encode_dict(value: dict[Any, Any]) -> str:
    # Go sorts map keys; kapacity's maps are keyed by strings.
    return "{" + ",".join([go_string(str(k)) + ":" + encode(value[k]) for k in sorted(value)]) + "}"


_FAST[list] = _encode_list
_FAST[tuple] = _encode_list
_FAST[dict] = _encode_dict


def encode(value: Any) -> str:
    """Encode a value tree (dict, list, str, int, float, bool, None, Time, Duration, Level).

    Any other object with a ``to_json() -> str`` method is encoded as that text.
    """
    fast = _FAST.get(type(value))
    if fast is not None:
        return fast(value)
    return _encode_slow(value)


def _encode_slow(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Level):
        return go_string(value.name)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_string(value)
    if isinstance(value, Time):
        return _encode_time(value)
    if isinstance(value, Duration):
        return str(value.ns)
    if isinstance(value, Mapping):
        items = sorted(value.items())
        return "{" + ",".join(go_string(str(k)) + ":" + encode(v) for k, v in items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ",".join([encode(v) for v in value]) + "]"
    # Go structs marshal in field order, which a dict would lose: objects that
    # know their Go JSON (``Series``, ``Result``, ...) provide it as text.
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        text = to_json()
        if isinstance(text, str):
            return text
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
