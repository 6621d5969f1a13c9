"""The pure core of the engine: points of one partition in, alert events and state out.

No I/O, no clock. The engine's loops (Kafka transactions, SQLite transactions) call
:meth:`PartitionProcessor.process` for each point, then either :meth:`commit` (the outputs
are durable) or :meth:`abort` (they were discarded: in-memory state goes back to the last
committed state, so a batch processed again yields the same events — the same event ids).

State is kept per alert group as ``task/node/group → {"g": GroupState, "l": {id: level}}``
(the alert-state changelog record); only the groups a point changed are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from kapacity.alert.config import AlertEvent
from kapacity.models import Point
from kapacity.pipeline import Task, build_task
from kapacity.pipeline.alert import AlertNode
from kapacity.runtime.records import (
    EventRecord,
    TaskDefinition,
    event_id_base,
    event_record,
    split_state_key,
    state_key,
)
from kapacity.runtime.taskstats import KeptStats, TaskStats, merge_nodes

__all__ = ["PartitionProcessor", "TaskSet"]

log: Final = logging.getLogger("kapacity.runtime")


class TaskSet:
    """The task definitions every instance knows (from the broadcast ``tasks`` kind)."""

    def __init__(self) -> None:
        self.defs: dict[str, TaskDefinition] = {}
        self.errors: dict[str, str] = {}
        self.version = 0

    def apply(self, key: str, value: Any) -> None:
        """One ``tasks`` record (``None`` = deleted)."""
        if value is None:
            self.defs.pop(key, None)
            self.errors.pop(key, None)
        else:
            self.defs[key] = TaskDefinition.from_value(value)
        self.version += 1

    def enabled(self) -> list[TaskDefinition]:
        return [d for d in self.defs.values() if d.enabled]


class _RunningTask:
    """One task's pipeline on one partition, with change tracking on its alert nodes."""

    def __init__(self, definition: TaskDefinition, records: Mapping[str, Any]) -> None:
        self.definition = definition
        self.task: Task = build_task(definition.script, task_name=definition.id, vars=dict(definition.vars))
        self.touched: set[tuple[str, str]] = set()
        self.ids: dict[tuple[str, str], dict[str, int]] = {}
        self._restore(records)
        for node in self.task.alert_nodes:
            self._track(node)
        self._nodes = {n.name: n for n in self.task.alert_nodes}

    def _restore(self, records: Mapping[str, Any]) -> None:
        snapshot: dict[str, dict[str, Any]] = {}
        for key, rec in records.items():
            _task, node, group = split_state_key(key)
            snap = snapshot.setdefault(node, {"groups": {}, "last_levels": {}})
            snap["groups"][group] = rec["g"]
            snap["last_levels"].update(rec.get("l", {}))
            self.ids[(node, group)] = dict(rec.get("l", {}))
        if snapshot:
            self.task.restore(snapshot)

    def _track(self, node: AlertNode) -> None:
        observe, batch, touched = node.observe, node.batch, self.touched
        name = node.name

        # Instance attributes shadow the methods: the node's own code and the fused fast
        # path both look ``observe`` up on the instance, so every state change passes here.
        def tracked_observe(row: Any, level: int, gs: Any) -> None:
            touched.add((name, row.group))
            observe(row, level, gs)

        def tracked_batch(b: Any) -> None:
            touched.add((name, b.group))
            batch(b)

        node.observe = tracked_observe  # type: ignore[method-assign]  # change tracking, see above
        node.batch = tracked_batch  # type: ignore[method-assign]  # change tracking, see above

    def records(self, events: list[AlertEvent], eid_base: str) -> list[EventRecord]:
        """The ``events`` records of this task's events, ids ``eid_base + n``; their alert
        levels noted and their groups marked for the changelog."""
        out = []
        for n, ev in enumerate(events):
            self.ids.setdefault((ev.node, ev.group), {})[ev.data.id] = int(ev.data.level)
            self.touched.add((ev.node, ev.group))
            out.append(event_record(f"{eid_base}{n}", self.definition.id, ev))
        return out

    def changes(self) -> dict[str, Any]:
        """The changelog records of the groups touched since the last call."""
        if not self.touched:
            return {}
        nodes = self._nodes
        out: dict[str, Any] = {}
        for node_name, group in self.touched:
            node = nodes[node_name]
            gs = node.state.groups.get(group)
            key = state_key(self.definition.id, node_name, group)
            out[key] = None if gs is None else {"g": gs.to_dict(), "l": dict(self.ids.get((node_name, group), {}))}
        self.touched.clear()
        return out


class PartitionProcessor:
    """Runs every enabled task over the points of one partition."""

    def __init__(
        self,
        partition: int,
        tasks: TaskSet,
        records: dict[str, Any] | None = None,
        *,
        select: Callable[[TaskDefinition], bool] | None = None,
        eid_prefix: str = "",
    ) -> None:
        self.partition = partition
        self._tasks = tasks
        #: Which enabled tasks run here (``None``: all): the engine runs the series-aligned
        #: ones, the regroup stage the others (see :mod:`kapacity.runtime.regroup`).
        self._select = select
        #: Before the partition in event ids: ``r`` for the repartition hop, whose offsets
        #: are those of another topic and must not collide with the points' ids.
        self._eid_prefix = eid_prefix
        #: The committed state records of this partition (``task/node/group`` → record).
        #: Shared, not copied: the Kafka loop's partition state applies commits to it.
        self.records: dict[str, Any] = records if records is not None else {}
        self._running: dict[str, _RunningTask] = {}
        self._version = -1
        self._pending: dict[str, Any] = {}
        self.points = 0
        self.task_errors = 0
        #: Task id → (its definition, node stats of its pipelines dropped by :meth:`abort`).
        self._retired = KeptStats()

    def _sync(self) -> None:
        if self._version == self._tasks.version:
            return
        select = self._select
        wanted = {d.id: d for d in self._tasks.enabled() if select is None or select(d)}
        if self._retired:  # a redefined, disabled or deleted task restarts at 0
            self._retired.prune(wanted)
        for tid in [t for t, r in self._running.items() if wanted.get(t) != r.definition]:
            self._pending.update(self._running.pop(tid).changes())  # its work so far stays
        for tid, d in wanted.items():
            if tid in self._running or tid in self._tasks.errors and self._tasks.errors[tid] == d.script:
                continue
            prefix = tid + "/"
            mine = {k: v for k, v in self.records.items() if k.startswith(prefix)}
            try:
                self._running[tid] = _RunningTask(d, mine)
            except Exception as exc:  # noqa: BLE001 - a task that does not build must not stop the others
                self._tasks.errors[tid] = d.script
                log.error("task %s cannot start: %s", tid, exc)
        self._version = self._tasks.version

    def process(self, offset: int, point: Point, only: str | None = None) -> list[EventRecord]:
        """The events ``point`` (at ``offset`` of this partition) caused, in order;
        ``only``: for that task alone (a repartitioned point is meant for one task).

        The hot path (once per point): the state records of the groups it touched are built
        once per :meth:`drain_changes`, not per point — a batch touching a group 50 times
        encodes its state once."""
        if self._version != self._tasks.version:
            self._sync()
        out: list[EventRecord] = []
        self.points += 1
        if only is None:
            running: Iterable[tuple[str, _RunningTask]] = self._running.items()
        else:
            one = self._running.get(only)
            running = () if one is None else ((only, one),)
        prefix = self._eid_prefix
        for tid, rt in running:
            dbrps = rt.definition.dbrps
            if dbrps and (point.database, point.retention_policy) not in dbrps:
                continue
            try:
                events: list[AlertEvent] = rt.task.process(point)
            except Exception as exc:  # noqa: BLE001 - one failing task must not stop the others
                self.task_errors += 1
                log.error("task %s failed on a point: %s", tid, exc)
                continue
            if events:
                out += rt.records(events, prefix + event_id_base(self.partition, offset, tid))
        return out

    def http_out(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per running task with ``|httpOut``: endpoint → group → its latest series (JSON).
        Read from the membership thread: copies of the nodes' dicts, never the live ones."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for tid, rt in list(self._running.items()):
            for endpoint, node in list(rt.task.graph.http_outs.items()):
                latest = dict(node.latest)
                if latest:
                    out.setdefault(tid, {})[endpoint] = {g: s.to_json() for g, s in latest.items()}
        return out

    @property
    def timed(self) -> bool:
        """Whether a task running here has clock-driven nodes (deadman)."""
        if self._version != self._tasks.version:
            self._sync()
        return any(rt.task.graph.timed for rt in self._running.values())

    def tick(self, now_ns: int, owns_quiet: Callable[[str], bool]) -> list[EventRecord]:
        """Let time pass to ``now_ns`` for the tasks with timed nodes (deadman): the events
        it caused. A task that has seen no point on this partition ticks only where
        ``owns_quiet(task id)``: its report of a stream that delivered nothing at all
        (Kapacitor's nil group, counted 0) must come from one partition, not from each."""
        if self._version != self._tasks.version:
            self._sync()
        out: list[EventRecord] = []
        prefix = f"{self._eid_prefix}t"
        for tid, rt in self._running.items():
            timed = rt.task.graph.timed
            if not timed:
                continue
            if not any(getattr(n, "counts", None) for n in timed) and not owns_quiet(tid):
                continue
            try:
                events = rt.task.tick(now_ns)
            except Exception as exc:  # noqa: BLE001 - one failing task must not stop the others
                self.task_errors += 1
                log.error("task %s failed on a clock tick: %s", tid, exc)
                continue
            out += rt.records(events, prefix + event_id_base(self.partition, now_ns, tid))
        return out

    def drain_changes(self) -> dict[str, Any]:
        """The state records changed since the last call (``None`` = deleted), to be written
        with the events; :meth:`apply` them once committed, or :meth:`abort`."""
        out, self._pending = self._pending, {}
        for rt in self._running.values():
            if rt.touched:
                out.update(rt.changes())
        return out

    def apply(self, changes: Mapping[str, Any]) -> None:
        apply_records(self.records, changes.items())

    def abort(self) -> None:
        """Forget uncommitted work: tasks are rebuilt from the committed records."""
        self._pending.clear()
        self._retire(self._running.values())
        self._running.clear()
        self._version = -1

    # --- node stats (read from the membership thread: copies, never the live dicts) --------

    def _retire(self, running: Iterable[_RunningTask]) -> None:
        """Keep the counters of pipelines about to be rebuilt (an abort): Kapacitor's counters
        only reset when the task restarts. The aborted batch is processed again, so its
        points count twice: the counters are at-least-once, like a retried batch's."""
        runs = {rt.definition.id: (rt.definition, rt.task.stats()) for rt in list(running)}
        if runs:
            self._retired.keep(runs)

    def task_stats(self) -> TaskStats:
        """Per running task, its node stats on this partition since the task (this definition
        of it) started here — pipelines rebuilt after an abort included."""
        kept = self._retired.stats(self._tasks.defs)
        out: TaskStats = {}
        for tid, rt in list(self._running.items()):
            stats = rt.task.stats()
            prev = kept.pop(tid, None)
            out[tid] = merge_nodes((prev, stats)) if prev is not None else stats
        out.update(kept)  # not rebuilt yet: until the next point
        return out


def apply_records(target: dict[str, Any], items: Iterable[tuple[str, Any]]) -> None:
    """Replay changelog records (latest wins, ``None`` deletes) into ``target``."""
    for k, v in items:
        if v is None:
            target.pop(k, None)
        else:
            target[k] = v


Callback = Callable[[int], None]
