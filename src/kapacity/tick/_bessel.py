"""Bessel functions of integer order (Go's ``math.J0 J1 Jn Y0 Y1 Yn``).

Python's ``math`` has none, and lambdas rarely use them, so they are computed
from Bessel's integral representations by composite Simpson integration:
accurate to about 1e-9 for the arguments alerting scripts see, not fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

_MAX_STEPS = 400_000


def _simpson(f: Callable[[float], float], a: float, b: float, steps: int) -> float:
    steps = min(_MAX_STEPS, steps + steps % 2)
    h = (b - a) / steps
    total = f(a) + f(b)
    for i in range(1, steps):
        total += (4 if i % 2 else 2) * f(a + i * h)
    return total * h / 3


def jn(n: int, x: float) -> float:
    """J_n(x) = 1/π ∫₀^π cos(nτ − x sin τ) dτ."""
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return 0.0
    steps = max(400, int(40 * (abs(x) + abs(n))))
    return _simpson(lambda t: math.cos(n * t - x * math.sin(t)), 0.0, math.pi, steps) / math.pi


def yn(n: int, x: float) -> float:
    """Y_n(x) for x > 0 from its integral representation; Y_n(0) = -Inf, x < 0 is NaN."""
    if math.isnan(x) or x < 0:
        return math.nan
    if x == 0:
        return -math.inf if n >= 0 or n % 2 == 0 else math.inf
    if math.isinf(x):
        return 0.0
    sign = -1.0 if n < 0 and n % 2 else 1.0
    n = abs(n)
    steps = max(400, int(40 * (x + n)))
    first = _simpson(lambda t: math.sin(x * math.sin(t) - n * t), 0.0, math.pi, steps)
    upper = 1.0
    while x * math.sinh(upper) - n * upper < 60:
        upper += 0.5
    parity = -1.0 if n % 2 else 1.0

    def tail(t: float) -> float:
        return (math.exp(n * t) + parity * math.exp(-n * t)) * math.exp(-x * math.sinh(t))

    second = _simpson(tail, 0.0, upper, max(2000, int(400 * upper)))
    return sign * (first - second) / math.pi
