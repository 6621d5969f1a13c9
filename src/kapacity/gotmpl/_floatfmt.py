"""Go's ``strconv.FormatFloat`` for the verbs templates use.

Go prints ``%v`` of a float64 as the *shortest* ``'g'`` form, switching to an
exponent when the decimal exponent is below -4 or at least 6 (``strconv``'s
``eprec = 6`` when the precision is "shortest"): ``10.0`` prints ``10``,
``1e6`` prints ``1e+06``, ``123456.7`` prints ``123456.7``, ``0.00001`` prints
``1e-05``. Python's ``repr`` gives the same shortest digits, so only the
layout is ours.
"""

from __future__ import annotations

import math


def shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``abs(f)`` and the decimal point position.

    The value is ``0.<digits> * 10**dp``; zero has no digits.
    """
    if f == 0:
        return "", 0
    mantissa, _, exp_text = repr(abs(f)).partition("e")
    exp = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    all_digits = whole + frac
    stripped = all_digits.lstrip("0")
    lead = len(all_digits) - len(stripped)
    dp = len(whole) + exp - lead
    return stripped.rstrip("0"), dp


def _fmt_e(neg: bool, digits: str, dp: int, prec: int, e: str) -> str:
    first = digits[0] if digits else "0"
    out = ["-" if neg else "", first]
    if prec > 0:
        frac = digits[1 : prec + 1]
        out.append("." + frac + "0" * (prec - len(frac)))
    exp = dp - 1 if digits else 0
    sign = "-" if exp < 0 else "+"
    exp = abs(exp)
    out.append(f"{e}{sign}{exp:02d}")
    return "".join(out)


def _fmt_f(neg: bool, digits: str, dp: int, prec: int) -> str:
    nd = len(digits)
    if dp > 0:
        whole = digits[:dp] + "0" * max(0, dp - nd)
    else:
        whole = "0"
    out = ["-" if neg else "", whole]
    if prec > 0:
        frac = []
        for i in range(prec):
            j = dp + i
            frac.append(digits[j] if 0 <= j < nd else "0")
        out.append("." + "".join(frac))
    return "".join(out)


def format_float(f: float, verb: str, prec: int) -> str:
    """``strconv.FormatFloat(f, verb, prec, 64)`` for verbs e E f g G (``prec`` -1 = shortest)."""
    if prec < 0 and verb == "g" and 1e-4 <= abs(f) < 1e6:
        # Here Python's repr is already fixed-point and shortest, like Go.
        r = repr(f)
        return r[:-2] if r.endswith(".0") else r
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    if prec < 0:
        digits, dp = shortest_digits(f)
        if verb in "eE":
            return _fmt_e(neg, digits, dp, max(len(digits) - 1, 0), verb)
        if verb == "f":
            return _fmt_f(neg, digits, dp, max(len(digits) - dp, 0))
        # 'g' / 'G' shortest.
        exp = dp - 1
        if digits and (exp < -4 or exp >= 6):
            return _fmt_e(neg, digits, dp, len(digits) - 1, "e" if verb == "g" else "E")
        return _fmt_f(neg, digits, dp, max(len(digits) - dp, 0))
    # Python rounds correctly (half-to-even on the exact binary value), like Go.
    if verb == "f":
        return f"{f:.{prec}f}"
    if verb in "eE":
        return f"{f:.{prec}{verb}}"
    # %.Ng: Go treats precision 0 as 1, and drops trailing zeros like Python.
    return f"{f:.{max(prec, 1)}{verb}}"


def format_hex_float(f: float, upper: bool, prec: int) -> str:
    """Go's ``%x`` of a float: ``0x1.8p+01`` (shortest mantissa, or ``prec`` hex digits rounded half-even)."""
    if math.isnan(f) or math.isinf(f):
        return format_float(f, "g", -1)
    neg = math.copysign(1.0, f) < 0
    a = abs(f)
    if a == 0:
        lead, frac, exp = 0, "", 0
    else:
        m, exp = math.frexp(a)  # a = m * 2**exp with 0.5 <= m < 1
        full = int(m * (1 << 53))  # 53-bit mantissa, leading bit set
        exp -= 1
        if 0 <= prec < 13:
            shift = 52 - 4 * prec
            q, r = divmod(full, 1 << shift)
            half = 1 << (shift - 1)
            if r > half or (r == half and q & 1):
                q += 1
            if q >> (4 * prec) >= 2:
                q >>= 1
                exp += 1
            lead = q >> (4 * prec)
            frac = f"{q & ((1 << (4 * prec)) - 1):0{prec}x}" if prec else ""
        else:
            lead = 1
            frac = f"{full & ((1 << 52) - 1):013x}".rstrip("0")
    if prec >= 13 or (prec > len(frac) and a == 0):
        frac = frac + "0" * (prec - len(frac))
    body = str(lead) + ("." + frac if frac else "")
    sign = "-" if exp < 0 else "+"
    text = f"0x{body}p{sign}{abs(exp):02d}"
    if upper:
        text = text.upper()
    return ("-" if neg else "") + text
