"""A running task: points in, alert events out, with per-node stats and persistable state.

Example::

    task = build_task(source, task_name="cpu_alert")
    events = task.process(Point("cpu", {"host": "a"}, {"usage_idle": 5.0}, time=10**9))
    events[0].data.level            # Level.CRITICAL
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kapacity.alert.event import Result
from kapacity.alert.config import AlertEvent, InhibitorRegistry
from kapacity.pipeline.alert import AlertNode
from kapacity.alert.templates import GoStruct
from kapacity.models import Point
from kapacity.pipeline.build import build_graph
from kapacity.pipeline.script import read_script
from kapacity.tick import ast


class Task:
    """One task's node graph.

    ``process`` is synchronous and pure (no I/O, no clock): the server feeds it points and
    calls ``tick(now_ns)`` on its clock for the time-driven parts (deadman).
    """

    def __init__(
        self,
        name: str,
        program: ast.Program,
        *,
        vars: dict[str, Any] | None = None,
        sink: Callable[[AlertEvent], None] | None = None,
        inhibitors: InhibitorRegistry | None = None,
        server_info: GoStruct | None = None,
        fused: bool = True,
    ) -> None:
        self.name = name
        self._pending: list[AlertEvent] = []
        self._sink = sink
        script = read_script(program, vars)
        #: ``dbrp`` statements of the script, as (database, retention policy).
        self.dbrps: list[tuple[str, str]] = list(script.dbrps)
        self.graph = build_graph(script, name, self._collect, inhibitors, server_info, fused=fused)
        self._accept = [s.accept for s in self.graph.sources]
        #: Per source, a batch entry point: the fused chain's own loop where there is one.
        many = {chain.accept: chain.accept_many for chain in self.graph.fused}
        self._accept_many = [many.get(s.accept) or _one_by_one(s.accept) for s in self.graph.sources]

    def _collect(self, event: AlertEvent) -> None:
        if self._sink is not None:
            self._sink(event)
        else:
            self._pending.append(event)

    def _drain(self) -> list[AlertEvent]:
        if not self._pending:
            return []
        out, self._pending = self._pending, []
        return out

    def process(self, point: Point) -> list[AlertEvent]:
        """Feed one point; the alert events it caused (empty when a sink was given)."""
        for accept in self._accept:
            accept(point)
        return self._drain() if self._pending else []

    def process_many(self, points: list[Point]) -> list[AlertEvent]:
        """Feed points in order; the alert events they caused (empty when a sink was given)."""
        accepts = self._accept
        if len(accepts) == 1:
            self._accept_many[0](points)
        else:
            for p in points:
                for accept in accepts:
                    accept(p)
        return self._drain()

    def tick(self, now_ns: int) -> list[AlertEvent]:
        """Let time pass to ``now_ns`` (deadman checks); the events it caused."""
        for node in self.graph.timed:
            node.tick(now_ns)
        return self._drain()

    @property
    def alert_nodes(self) -> list[AlertNode]:
        return list(self.graph.alerts)

    def http_out(self, endpoint: str) -> Result | None:
        """The latest result kept by ``|httpOut(endpoint)``; None for an unknown endpoint."""
        node = self.graph.http_outs.get(endpoint)
        return None if node is None else node.result()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per node: points in/out, errors, and node-specific counters."""
        return {n.name: n.stats() for n in self.graph.nodes}

    def snapshot(self) -> dict[str, Any]:
        """The alert state of every alert node, JSON-serializable (keyed by node name)."""
        return {a.name: a.snapshot() for a in self.graph.alerts}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore what :meth:`snapshot` returned (nodes that no longer exist are ignored)."""
        for a in self.graph.alerts:
            if a.name in snapshot:
                a.restore(snapshot[a.name])

    def seed_events(self, events: dict[str, tuple[Any, int]]) -> None:
        """Seed event ID → (level, time ns) from persisted alert topics into every alert node,
        so that ``previousLevel`` and recoveries survive a restart."""
        for a in self.graph.alerts:
            a.seed_events(events)


def _one_by_one(accept: Callable[[Point], None]) -> Callable[[list[Point]], None]:
    def accept_many(points: list[Point]) -> None:
        for p in points:
            accept(p)

    return accept_many


def build_task(
    program: ast.Program | str,
    *,
    task_name: str,
    vars: dict[str, Any] | None = None,
    sink: Callable[[AlertEvent], None] | None = None,
    inhibitors: InhibitorRegistry | None = None,
    server_info: GoStruct | None = None,
    fused: bool = True,
) -> Task:
    """Parse (when given source text), validate and build a task.

    Raises ``TickError`` (a :class:`~kapacity.pipeline.errors.PipelineError` for graph errors)
    with the line:column of the problem. ``fused=False`` disables the fused fast path of
    ``from → where → alert`` chains (same results, slower; for tests and debugging).
    """
    if isinstance(program, str):
        from kapacity.tick.parser import parse

        program = parse(program)
    return Task(task_name, program, vars=vars, sink=sink, inhibitors=inhibitors, server_info=server_info,
                fused=fused)
