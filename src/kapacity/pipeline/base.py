"""The node base class: how rows and batches move down the task graph.

A node receives rows (:meth:`Node.point`) and batches (:meth:`Node.batch`) from its parent
and hands its output to its children. :meth:`Node.wire` binds the output calls once the graph
is complete, so a node with one child calls it directly (no per-point loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kapacity.pipeline.row import Batch, Row

log = logging.getLogger("kapacity.pipeline")

#: At most one logged lambda error per node per this many seconds: a bad lambda on a busy
#: stream would otherwise flood the log; the ``errors`` stat still counts every one.
ERROR_LOG_INTERVAL_S = 10.0


def _drop_point(_row: Row) -> None:
    return None


def _drop_batch(_batch: Batch) -> None:
    return None


class Node:
    """Base of every runtime node."""

    kind = "node"

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[Node] = []
        self.points_in = 0
        self.points_out = 0
        self.errors = 0
        self._last_error_log = -ERROR_LOG_INTERVAL_S
        self.emit_point: Callable[[Row], None] = _drop_point
        self.emit_batch: Callable[[Batch], None] = _drop_batch

    def wire(self) -> None:
        """Bind :attr:`emit_point`/:attr:`emit_batch` to the children (call after linking)."""
        kids = self.children
        if len(kids) == 1:
            self.emit_point = kids[0].point
            self.emit_batch = kids[0].batch
        elif kids:
            pts = [k.point for k in kids]
            bts = [k.batch for k in kids]

            def emit_point(row: Row) -> None:
                for f in pts:
                    f(row)

            def emit_batch(b: Batch) -> None:
                for f in bts:
                    f(b)

            self.emit_point = emit_point
            self.emit_batch = emit_batch

    def point(self, row: Row) -> None:
        self.points_in += 1
        self.points_out += 1
        self.emit_point(row)

    def batch(self, b: Batch) -> None:
        self.points_in += len(b.rows)
        self.points_out += len(b.rows)
        self.emit_batch(b)

    def tick(self, now_ns: int) -> None:
        """Time passes (the server's clock); only time-driven nodes act on it."""
        return None

    def error(self, what: str, err: BaseException) -> None:
        """Count an evaluation error and log it, at most once per ERROR_LOG_INTERVAL_S."""
        self.errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            log.warning("node %s: %s: %s (errors so far: %d)", self.name, what, err, self.errors)

    def stats(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "points_in": self.points_in,
            "points_out": self.points_out,
            "errors": self.errors,
        }
