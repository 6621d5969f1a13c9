"""Write precisions and the time range a point may carry."""

from __future__ import annotations

from kapacity.errors import KapacityError

#: ``precision`` query values of ``/write`` and the nanoseconds in one unit of each.
PRECISIONS: dict[str, int] = {
    "n": 1,
    "u": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
}

#: InfluxDB keeps the two extreme int64 values free as sentinels, so the
#: representable times are one step narrower than int64 on each side.
MIN_NANO_TIME = -(2**63) + 2
MAX_NANO_TIME = 2**63 - 2

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


class PrecisionError(KapacityError, ValueError):
    """An unknown ``precision``; names the valid choices."""


def precision_multiplier(precision: str) -> int:
    """Nanoseconds per timestamp unit; ``""`` means nanoseconds, as in InfluxDB.

    >>> precision_multiplier("ms")
    1000000
    """
    if precision == "":
        return 1
    try:
        return PRECISIONS[precision]
    except KeyError:
        valid = ", ".join(PRECISIONS)
        raise PrecisionError(
            f"invalid precision {precision!r}: valid precisions are {valid}"
        ) from None
