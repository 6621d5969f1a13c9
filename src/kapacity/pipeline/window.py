"""``|window()``: turns a stream of rows into batches, driven by the data's own time.

Kapacitor's rule: a group's window emits when a row arrives whose time is at or past the
next emit time; the emitted batch holds the buffered rows with time in
``[emit - period, emit)`` and is stamped with the emit time. With ``every`` = 0 it emits on
every row. ``align`` rounds emit times down to a multiple of ``every``; ``fillPeriod`` waits a
full period before the first emission.

:class:`CountWindowNode` is ``.periodCount(n).everyCount(m)``: each group keeps its last ``n``
rows and emits them after every ``m``-th row (the first time after ``n`` rows with
``fillPeriod``), stamped with the time of the newest row, as Kapacitor's ``windowByCount``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kapacity.pipeline.base import Node
from kapacity.pipeline.row import Batch, Row

#: A window never holds more rows than this per group; beyond it the oldest rows are
#: dropped and counted in the ``dropped`` stat (a bounded buffer, never silent).
MAX_WINDOW_ROWS = 1_000_000


class _GroupWindow:
    __slots__ = ("next_emit", "buf")

    def __init__(self, next_emit: int) -> None:
        self.next_emit = next_emit
        self.buf: deque[Row] = deque()


def _truncate(t: int, d: int) -> int:
    return t - t % d if d > 0 else t


class WindowNode(Node):
    kind = "window"

    def __init__(self, name: str, period: int, every: int, align: bool, fill_period: bool) -> None:
        super().__init__(name)
        if every == 0 and period == 0:
            raise ValueError("window needs a period")
        self.period = period
        self.every = every
        self.align = align
        self.fill_period = fill_period
        self.groups: dict[str, _GroupWindow] = {}
        self.dropped = 0

    def _first_emit(self, t: int) -> int:
        if self.fill_period:
            nxt = t + self.period
            if self.align:
                first = nxt
                nxt = _truncate(nxt, self.every)
                if nxt <= first:
                    nxt += self.every
            return nxt
        nxt = t + self.every
        return _truncate(nxt, self.every) if self.align else nxt

    def _insert(self, w: _GroupWindow, row: Row) -> None:
        w.buf.append(row)
        if len(w.buf) > MAX_WINDOW_ROWS:
            w.buf.popleft()
            self.dropped += 1

    def point(self, row: Row) -> None:
        self.points_in += 1
        w = self.groups.get(row.group)
        if w is None:
            w = self.groups[row.group] = _GroupWindow(self._first_emit(row.time))
        t = row.time
        if self.every == 0:
            self._insert(w, row)
            if t >= w.next_emit:
                self._purge(w, t - self.period, inclusive=False)
                self._emit(row, w, t)
                w.next_emit = t
            return
        if t >= w.next_emit:
            self._purge(w, w.next_emit - self.period, inclusive=True)
            self._emit(row, w, w.next_emit)
            nxt = t + self.every
            w.next_emit = _truncate(nxt, self.every) if self.align else nxt
        self._insert(w, row)

    @staticmethod
    def _purge(w: _GroupWindow, oldest: int, inclusive: bool) -> None:
        buf = w.buf
        if inclusive:
            while buf and buf[0].time < oldest:
                buf.popleft()
        else:
            while buf and buf[0].time <= oldest:
                buf.popleft()

    def _emit(self, row: Row, w: _GroupWindow, tmax: int) -> None:
        rows = list(w.buf)
        self.points_out += len(rows)
        self.emit_batch(Batch(row.name, row.group_tags(), tmax, row.group, row.dims, row.by_name, rows))

    def batch(self, b: Batch) -> None:
        # Kapacitor's window rejects batch input; count it instead of failing the task.
        self.error("window", ValueError("window does not support batch data"))

    def stats(self) -> dict[str, object]:
        out = super().stats()
        out["dropped"] = self.dropped
        return out


class _CountWindow:
    __slots__ = ("buf", "count", "next_emit")

    def __init__(self, period: int, next_emit: int) -> None:
        # A deque with maxlen is the ring of Kapacitor's buffer: the oldest row falls out.
        self.buf: deque[Row] = deque(maxlen=period)
        self.count = 0
        self.next_emit = next_emit


class CountWindowNode(Node):
    """``|window().periodCount(n).everyCount(m)``: windows of the last ``n`` rows of a group,
    emitted every ``m`` rows. Memory is bounded by ``n`` rows per group."""

    kind = "window"

    def __init__(self, name: str, period_count: int, every_count: int, fill_period: bool) -> None:
        super().__init__(name)
        if period_count <= 0 or every_count <= 0:
            raise ValueError("periodCount and everyCount must be greater than zero")
        self.period_count = period_count
        self.every_count = every_count
        self.fill_period = fill_period
        self.groups: dict[str, _CountWindow] = {}

    def point(self, row: Row) -> None:
        self.points_in += 1
        w = self.groups.get(row.group)
        if w is None:
            first = self.period_count if self.fill_period else self.every_count
            w = self.groups[row.group] = _CountWindow(self.period_count, first)
        w.buf.append(row)
        w.count += 1
        if w.count == w.next_emit:
            w.next_emit += self.every_count
            rows = list(w.buf)
            self.points_out += len(rows)
            self.emit_batch(Batch(row.name, row.group_tags(), rows[-1].time, row.group, row.dims,
                                  row.by_name, rows))

    def batch(self, b: Batch) -> None:
        self.error("window", ValueError("window does not support batch data"))

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["groups"] = len(self.groups)
        return out
