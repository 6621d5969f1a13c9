"""InfluxQL aggregate and selector nodes over windows: ``|mean('value').as('m')`` & co.

A batch (a window) becomes one row ``{as: value}`` stamped with the window's time (or, for
selectors with ``.usePointTimes()``, the selected row's time); ``distinct`` gives one row per
distinct value. On a stream (no window) rows with the same time form the batch, as in
Kapacitor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from kapacity.pipeline.base import Node
from kapacity.pipeline.row import Batch, Row

#: (value, time) pairs in time order → list of (value, time-or-None) results.
Reducer = Callable[[list[tuple[Any, int]], float], list[tuple[Any, int | None]]]


def _numeric(vals: Sequence[tuple[Any, int]]) -> list[Any]:
    out = []
    for v, _ in vals:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"unsupported value type {type(v).__name__} for a numeric aggregate")
        out.append(v)
    return out


def _count(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    return [(len(vals), None)]


def _sum(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    nums = _numeric(vals)
    if all(isinstance(n, int) for n in nums):
        return [(sum(nums), None)]
    return [(math.fsum(float(n) for n in nums), None)]


def _mean(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    nums = _numeric(vals)
    return [(math.fsum(float(n) for n in nums) / len(nums), None)]


def _median(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    nums = sorted(_numeric(vals))
    n = len(nums)
    if n % 2:
        return [(float(nums[n // 2]), None)]
    return [((float(nums[n // 2 - 1]) + float(nums[n // 2])) / 2, None)]


def _spread(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    nums = _numeric(vals)
    return [(max(nums) - min(nums), None)]


def _stddev(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    nums = [float(n) for n in _numeric(vals)]
    if len(nums) < 2:
        return []
    mean = math.fsum(nums) / len(nums)
    return [(math.sqrt(math.fsum((x - mean) ** 2 for x in nums) / (len(nums) - 1)), None)]


def _min(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    _numeric(vals)
    best = vals[0]
    for v in vals[1:]:
        if v[0] < best[0]:
            best = v
    return [best]


def _max(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    _numeric(vals)
    best = vals[0]
    for v in vals[1:]:
        if v[0] > best[0]:
            best = v
    return [best]


def _first(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    return [vals[0]]


def _last(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    return [vals[-1]]


def _mode(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    counts: dict[Any, int] = {}
    for v, _ in vals:
        counts[v] = counts.get(v, 0) + 1
    top = max(counts.values())
    # Ties go to the value seen first (dicts keep insertion order).
    return [(next(v for v, c in counts.items() if c == top), None)]


def _percentile(vals: list[tuple[Any, int]], pct: float) -> list[tuple[Any, int | None]]:
    _numeric(vals)
    ordered = sorted(vals, key=lambda vt: vt[0])
    i = int(math.floor(len(ordered) * pct / 100.0 + 0.5)) - 1
    if i < 0 or i >= len(ordered):
        return []
    return [ordered[i]]


def _distinct(vals: list[tuple[Any, int]], _arg: float) -> list[tuple[Any, int | None]]:
    seen = sorted({v for v, _ in vals}, key=lambda v: (str(type(v)), v))
    return [(v, None) for v in seen]


#: name → (reducer, is a selector (has a point time))
REDUCERS: dict[str, tuple[Reducer, bool]] = {
    "count": (_count, False),
    "sum": (_sum, False),
    "mean": (_mean, False),
    "median": (_median, False),
    "mode": (_mode, False),
    "spread": (_spread, False),
    "stddev": (_stddev, False),
    "min": (_min, True),
    "max": (_max, True),
    "first": (_first, True),
    "last": (_last, True),
    "percentile": (_percentile, True),
    "distinct": (_distinct, False),
}


class AggregateNode(Node):
    """One InfluxQL function over a field; emits rows named ``as_`` (default: the function name)."""

    def __init__(self, name: str, func: str, field: str, as_: str, arg: float = 0.0, point_times: bool = False) -> None:
        super().__init__(name)
        self.kind = func
        self.func = func
        self.reducer, self.selector = REDUCERS[func]
        self.field = field
        self.as_ = as_
        self.arg = arg
        self.point_times = point_times and self.selector
        self.pending: dict[str, list[Row]] = {}  # stream input: rows of the current time

    def _reduce(self, b: Batch) -> list[Row]:
        vals = [(r.fields[self.field], r.time) for r in b.rows if self.field in r.fields]
        if not vals:
            return []
        try:
            results = self.reducer(vals, self.arg)
        except (TypeError, ValueError) as err:
            self.error(f"{self.func}({self.field!r})", err)
            return []
        return [
            Row(b.name, dict(b.tags), {self.as_: v}, t if (self.point_times and t is not None) else b.time,
                b.group, b.dims, b.by_name)
            for v, t in results
        ]

    def batch(self, b: Batch) -> None:
        self.points_in += len(b.rows)
        rows = self._reduce(b)
        self.points_out += len(rows)
        if self.func == "distinct":
            self.emit_batch(Batch(b.name, b.tags, b.time, b.group, b.dims, b.by_name, rows))
            return
        for row in rows:
            self.emit_point(row)

    def point(self, row: Row) -> None:
        self.points_in += 1
        pend = self.pending.get(row.group)
        if pend and pend[0].time != row.time:
            first = pend[0]
            self.pending[row.group] = [row]
            b = Batch(first.name, first.group_tags(), first.time, first.group, first.dims, first.by_name, pend)
            self.points_in -= len(pend)
            self.batch(b)
        elif pend:
            pend.append(row)
        else:
            self.pending[row.group] = [row]
