"""Go's ``fmt`` printing of template values: ``Sprint``, ``Sprintln``, ``Sprintf``.

Python values stand for Go values: ``None`` is ``nil``, ``int`` is ``int``,
``float`` is ``float64``, ``list``/``tuple`` are slices (``[a b]``), mappings
are maps (``map[a:1 b:2]``, keys sorted), dataclasses are structs (``{a b}``),
and objects with a Go ``String`` method (``Level``, ``Time``, ``Duration``)
are ``fmt.Stringer`` s.

Example::

    >>> sprintf("%5.2f|%-4d|%q", 3.14159, 7, "hi")
    ' 3.14|7   |"hi"'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kapacity.gotmpl._floatfmt import format_float, format_hex_float
from kapacity.gotmpl._values import NO_VALUE, go_type_name, struct_fields
from kapacity.gotypes import Duration


@dataclass(slots=True)
class _Flags:
    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    plus_v: bool = False
    sharp_v: bool = False
    wid: int | None = None
    prec: int | None = None


_PLAIN = _Flags()


def _rune_len(s: str) -> int:
    return len(s)


def _pad(s: str, f: _Flags) -> str:
    if f.wid is None:
        return s
    n = f.wid - _rune_len(s)
    if n <= 0:
        return s
    if f.minus:
        return s + " " * n
    return ("0" if f.zero else " ") * n + s


def _stringer(v: Any) -> str | None:
    """The ``String()`` of a Go Stringer, or None."""
    method = getattr(v, "String", None)
    if method is not None and callable(method) and not isinstance(v, type):
        result = method()
        if isinstance(result, str):
            return result
    return None


def go_quote(s: str, ascii_only: bool = False) -> str:
    """Go's ``strconv.Quote`` (or ``QuoteToASCII``)."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and ord(ch) >= 0x80):
            out.append(ch)
        else:
            out.append(_escape_rune(ch))
    out.append('"')
    return "".join(out)


_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _escape_rune(ch: str) -> str:
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch]
    r = ord(ch)
    if r < 0x20 or r == 0x7F:
        return f"\\x{r:02x}"
    if 0xD800 <= r <= 0xDFFF:
        return "\\ufffd"
    if r < 0x10000:
        return f"\\u{r:04x}"
    return f"\\U{r:08x}"


def _quote_rune(r: int, ascii_only: bool) -> str:
    if r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    ch = chr(r)
    if ch == "'" or ch == "\\":
        return "'\\" + ch + "'"
    if ch.isprintable() and not (ascii_only and r >= 0x80):
        return "'" + ch + "'"
    return "'" + _escape_rune(ch) + "'"


class _Printer:
    __slots__ = ("buf", "erroring")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.erroring = False

    # -- basic kinds -------------------------------------------------------
    def fmt_integer(self, v: int, base: int, verb: str, f: _Flags) -> None:
        negative = v < 0
        u = -v if negative else v
        if base == 10:
            digits = str(u)
        elif base == 16:
            digits = format(u, "X" if verb == "X" else "x")
        elif base == 8:
            digits = format(u, "o")
        else:
            digits = format(u, "b")
        prec: int | None = None
        if f.prec is not None:
            prec = f.prec
            if prec == 0 and u == 0:
                self.buf.append(" " * (f.wid or 0))
                return
        elif f.zero and not f.minus and f.wid is not None:
            prec = f.wid
            if negative or f.plus or f.space:
                prec -= 1
        if prec is not None and len(digits) < prec:
            digits = "0" * (prec - len(digits)) + digits
        prefix = ""
        if f.sharp:
            if base == 2:
                prefix = "0b"
            elif base == 8 and not digits.startswith("0"):
                prefix = "0"
            elif base == 16:
                prefix = "0X" if verb == "X" else "0x"
        if verb == "O":
            prefix = "0o"
        sign = "-" if negative else "+" if f.plus else " " if f.space else ""
        self.buf.append(_pad(sign + prefix + digits, _no_zero(f)))

    def fmt_float(self, v: float, verb: str, f: _Flags) -> None:
        if verb == "v":
            verb, prec = "g", -1
        elif verb in "bgGxX":
            prec = -1
        else:
            prec = 6
        if verb == "F":
            verb = "f"
        if f.prec is not None:
            prec = f.prec
        if verb in "xX":
            num = format_hex_float(v, verb == "X", prec)
        elif verb == "b":
            num = _binary_float(v)
        else:
            if f.sharp and verb in "gG" and prec < 0:
                prec = 6
            num = format_float(v, verb, prec)
            if f.sharp and verb in "gG":
                num = _sharp_g(num, v, verb, prec)
        if num[0] not in "+-":
            num = "+" + num
        if f.space and num[0] == "+" and not f.plus:
            num = " " + num[1:]
        if num[1] in "IN":  # Inf / NaN are never zero padded
            if num[1] == "N" and not f.space and not f.plus:
                num = num[1:]
            self.buf.append(_pad(num, _no_zero(f)))
            return
        if f.plus or num[0] != "+":
            if f.zero and not f.minus and f.wid is not None and f.wid > len(num):
                self.buf.append(num[0] + "0" * (f.wid - len(num)) + num[1:])
                return
            self.buf.append(_pad(num, f))
            return
        self.buf.append(_pad(num[1:], f))

    def fmt_string(self, s: str, verb: str, f: _Flags) -> None:
        if verb in "vs":
            if f.sharp_v:
                self.buf.append(_pad(go_quote(s), f))
                return
            if f.prec is not None:
                s = s[: f.prec]
            self.buf.append(_pad(s, f))
        elif verb in "xX":
            data = s.encode("utf-8")
            if f.prec is not None:
                data = data[: f.prec]
            pieces = [format(b, "02X" if verb == "X" else "02x") for b in data]
            px = ("0X" if verb == "X" else "0x") if f.sharp else ""
            if f.space:
                text = " ".join(px + p for p in pieces)
            else:
                text = px + "".join(pieces) if pieces else ""
            self.buf.append(_pad(text, f))
        elif verb == "q":
            if f.prec is not None:
                s = s[: f.prec]
            if f.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
                self.buf.append(_pad("`" + s + "`", f))
            else:
                self.buf.append(_pad(go_quote(s, ascii_only=f.plus), f))
        else:
            self.bad_verb(s, verb, f)

    # -- dispatch ------------------------------------------------------------
    def print_arg(self, arg: Any, verb: str, f: _Flags, depth: int = 0) -> None:
        if arg is None or arg is NO_VALUE:
            if verb in "vT":
                self.buf.append(_pad("<nil>", f))
            else:
                self.bad_verb(None, verb, f)
            return
        if verb == "T":
            self.buf.append(_pad(go_type_name(arg), f))
            return
        t = type(arg)
        if t is bool:
            if verb in "tv":
                self.buf.append(_pad("true" if arg else "false", f))
            else:
                self.bad_verb(arg, verb, f)
            return
        if t is str:
            self.fmt_string(arg, verb, f)
            return
        if t is int:
            self.print_int(arg, verb, f)
            return
        if t is float:
            if verb in "vbeEfFgGxX":
                self.fmt_float(arg, verb, f)
            else:
                self.bad_verb(arg, verb, f)
            return
        # Named types: Stringers first, for the verbs that accept strings.
        if not self.erroring and verb in "vsxXq" and not f.sharp_v:
            text = _stringer(arg)
            if text is not None:
                self.fmt_string(text, verb, f)
                return
        if isinstance(arg, bool):
            self.print_arg(bool(arg), verb, f, depth)
        elif isinstance(arg, int):
            self.print_int(int(arg), verb, f)
        elif isinstance(arg, Duration):
            self.print_int(arg.ns, verb, f)
        elif isinstance(arg, float):
            self.print_arg(float(arg), verb, f, depth)
        elif isinstance(arg, str):
            self.fmt_string(str(arg), verb, f)
        elif isinstance(arg, bytes | bytearray):
            if verb in "sqxX":
                self.fmt_string(bytes(arg).decode("utf-8", "replace"), verb, f)
            else:
                self.print_seq(list(arg), verb, f, depth)
        elif isinstance(arg, Mapping):
            self.print_map(arg, verb, f, depth)
        elif isinstance(arg, Sequence):
            self.print_seq(arg, verb, f, depth)
        else:
            fields = struct_fields(arg)
            if fields is not None:
                self.buf.append("{")
                for i, item in enumerate(fields):
                    if i:
                        self.buf.append(" ")
                    self.print_arg(item, verb, f, depth + 1)
                self.buf.append("}")
            elif callable(arg):
                self.bad_verb(arg, verb, f) if verb != "v" else self.buf.append("<func>")
            else:
                self.fmt_string(str(arg), verb if verb in "vsxXq" else "v", f)

    def print_int(self, v: int, verb: str, f: _Flags) -> None:
        if verb in "vd":
            self.fmt_integer(v, 10, verb, f)
        elif verb == "b":
            self.fmt_integer(v, 2, verb, f)
        elif verb in "oO":
            self.fmt_integer(v, 8, verb, f)
        elif verb in "xX":
            self.fmt_integer(v, 16, verb, f)
        elif verb == "c":
            r = v if 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF else 0xFFFD
            self.buf.append(_pad(chr(r), f))
        elif verb == "q":
            self.buf.append(_pad(_quote_rune(v, f.plus), f))
        elif verb == "U":
            text = f"U+{v:04X}" if v >= 0 else f"U+{v & 0xFFFFFFFFFFFFFFFF:04X}"
            if f.sharp and 0 <= v <= 0x10FFFF and chr(v).isprintable():
                text += f" '{chr(v)}'"
            self.buf.append(_pad(text, f))
        else:
            self.bad_verb(v, verb, f)

    def print_seq(self, seq: Sequence[Any], verb: str, f: _Flags, depth: int) -> None:
        self.buf.append("[")
        for i, item in enumerate(seq):
            if i:
                self.buf.append(" ")
            self.print_arg(item, verb, f, depth + 1)
        self.buf.append("]")

    def print_map(self, m: Mapping[Any, Any], verb: str, f: _Flags, depth: int) -> None:
        self.buf.append("map[")
        try:
            keys = sorted(m)
        except TypeError:
            keys = list(m)
        for i, k in enumerate(keys):
            if i:
                self.buf.append(" ")
            self.print_arg(k, verb, f, depth + 1)
            self.buf.append(":")
            self.print_arg(m[k], verb, f, depth + 1)
        self.buf.append("]")

    def bad_verb(self, arg: Any, verb: str, f: _Flags) -> None:
        self.erroring = True
        self.buf.append("%!" + verb + "(")
        if arg is None:
            self.buf.append("<nil>")
        else:
            self.buf.append(go_type_name(arg) + "=")
            self.print_arg(arg, "v", f)
        self.buf.append(")")
        self.erroring = False


def _binary_float(v: float) -> str:
    """Go's ``%b`` of a float64: decimal mantissa, binary exponent (``4503599627370496p-52``)."""
    if math.isnan(v) or math.isinf(v):
        return format_float(v, "g", -1)
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    a = abs(v)
    if a == 0:
        return f"{sign}0p-1074"
    m, e = math.frexp(a)
    mant, exp = int(m * (1 << 53)), e - 53
    if exp < -1074:  # subnormal: Go keeps the exponent at the minimum
        mant >>= -1074 - exp
        exp = -1074
    return f"{sign}{mant}p{exp:+d}"


def _no_zero(f: _Flags) -> _Flags:
    if not f.zero:
        return f
    return _Flags(minus=f.minus, wid=f.wid)


def _sharp_g(num: str, v: float, verb: str, prec: int) -> str:
    """``%#g`` keeps the decimal point and trailing zeros up to the precision."""
    mant, e, exp = num.partition("e" if verb == "g" else "E")
    digits = sum(c.isdigit() for c in mant.lstrip("-+0.")) if v != 0 else 1
    if "." not in mant:
        mant += "."
    want = prec if prec > 0 else 6
    mant += "0" * max(0, want - digits)
    return mant + (e + exp if e else "")


def sprint(*args: Any) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    p = _Printer()
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            p.buf.append(" ")
        p.print_arg(arg, "v", _PLAIN)
        prev_string = is_string
    return "".join(p.buf)


def sprintln(*args: Any) -> str:
    """Go's ``fmt.Sprintln``: operands separated by spaces, newline appended."""
    p = _Printer()
    for i, arg in enumerate(args):
        if i:
            p.buf.append(" ")
        p.print_arg(arg, "v", _PLAIN)
    p.buf.append("\n")
    return "".join(p.buf)


def format_value(v: Any) -> str:
    """``fmt.Sprint(v)`` for one value (fast path for the common kinds)."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]  # narrowed by the type check above
    if t is int:
        return str(v)
    if t is float:
        return format_float(v, "g", -1)
    if t is bool:
        return "true" if v else "false"
    method = getattr(t, "String", None)
    if method is not None and not isinstance(v, Mapping | Sequence):
        text = method(v)
        if isinstance(text, str):
            return text
    return sprint(v)


def _parse_num(fmt: str, i: int, end: int) -> tuple[int | None, int]:
    start = i
    while i < end and fmt[i].isdigit() and fmt[i].isascii():
        i += 1
    if i == start:
        return None, i
    return int(fmt[start:i]), i


def sprintf(fmt: str, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` with flags ``-+# 0``, width, precision, ``*`` and ``[n]`` indexes."""
    p = _Printer()
    buf = p.buf
    end = len(fmt)
    i = 0
    arg_num = 0
    reordered = False
    while i < end:
        j = fmt.find("%", i)
        if j < 0:
            buf.append(fmt[i:])
            break
        if j > i:
            buf.append(fmt[i:j])
        i = j + 1
        f = _Flags()
        while i < end:
            c = fmt[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = not f.minus
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus = True
                f.zero = False
            elif c == " ":
                f.space = True
            else:
                break
            i += 1
        good_arg_num = True
        arg_num, i, after_index, ok, r = _arg_number(arg_num, fmt, i, len(args))
        good_arg_num &= ok
        reordered |= r
        if i < end and fmt[i] == "*":
            i += 1
            f.wid, arg_num = _int_from_arg(args, arg_num)
            if f.wid is None:
                buf.append("%!(BADWIDTH)")
            elif f.wid < 0:
                f.wid = -f.wid
                f.minus = True
                f.zero = False
            after_index = False
        else:
            f.wid, i = _parse_num(fmt, i, end)
            if after_index and f.wid is not None:
                good_arg_num = False
        if i + 1 < end and fmt[i] == ".":
            i += 1
            if after_index:
                good_arg_num = False
            arg_num, i, after_index, ok, r = _arg_number(arg_num, fmt, i, len(args))
            good_arg_num &= ok
            reordered |= r
            if i < end and fmt[i] == "*":
                i += 1
                f.prec, arg_num = _int_from_arg(args, arg_num)
                if f.prec is not None and f.prec < 0:
                    f.prec = None
                    buf.append("%!(BADPREC)")
                elif f.prec is None:
                    buf.append("%!(BADPREC)")
                after_index = False
            else:
                f.prec, i = _parse_num(fmt, i, end)
                if f.prec is None:
                    f.prec = 0
        if not after_index:
            arg_num, i, after_index, ok, r = _arg_number(arg_num, fmt, i, len(args))
            good_arg_num &= ok
            reordered |= r
        if i >= end:
            buf.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            buf.append("%")
        elif not good_arg_num:
            buf.append(f"%!{verb}(BADINDEX)")
        elif arg_num >= len(args):
            buf.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                f.sharp_v, f.sharp = f.sharp, False
                f.plus_v, f.plus = f.plus, False
            p.print_arg(args[arg_num], verb, f)
            arg_num += 1
    if not reordered and arg_num < len(args):
        buf.append("%!(EXTRA ")
        for k, arg in enumerate(args[arg_num:]):
            if k:
                buf.append(", ")
            if arg is None or arg is NO_VALUE:
                buf.append("<nil>")
            else:
                buf.append(go_type_name(arg) + "=")
                p.print_arg(arg, "v", _PLAIN)
        buf.append(")")
    return "".join(buf)


def _arg_number(arg_num: int, fmt: str, i: int, num_args: int) -> tuple[int, int, bool, bool, bool]:
    """Parse ``[n]``: (argNum, i, found, ok, reordered)."""
    if i >= len(fmt) or fmt[i] != "[":
        return arg_num, i, False, True, False
    close = fmt.find("]", i + 1)
    if close < 0:
        return arg_num, i + 1, False, False, True
    text = fmt[i + 1 : close]
    if not text.isdigit() or not text.isascii():
        return arg_num, close + 1, True, False, True
    n = int(text) - 1
    if 0 <= n < num_args:
        return n, close + 1, True, True, True
    return arg_num, close + 1, True, False, True


def _int_from_arg(args: tuple[Any, ...], arg_num: int) -> tuple[int | None, int]:
    if arg_num < len(args):
        a = args[arg_num]
        if isinstance(a, int) and not isinstance(a, bool):
            if abs(a) > 1_000_000:
                return None, arg_num + 1
            return int(a), arg_num + 1
        return None, arg_num + 1
    return None, arg_num
